import { describe, expect, it } from "vitest";
import type { RJSFSchema } from "@rjsf/utils";
import { validator } from "./validator";

const schema: RJSFSchema = {
  type: "object",
  required: ["op"],
  properties: {
    n: { type: "integer", minimum: 0, maximum: 93 },
    op: { type: "string", enum: ["add", "mul"] },
    tags: { type: "array", items: { type: "string", minLength: 2 } },
  },
};

describe("the config forms' validator", () => {
  it("files each error under its field, worded as ajv words it", () => {
    const { errorSchema, errors } = validator.validateFormData({ n: 100, tags: ["ok", "x"] }, schema);
    expect(errorSchema).toEqual({
      n: { __errors: ["must be <= 93"] },
      op: { __errors: ["must have required property 'op'"] },
      tags: { 1: { __errors: ["must NOT have fewer than 2 characters"] } },
    });
    expect(errors.map((e) => e.property).sort()).toEqual([".n", ".op", ".tags.1"]);
  });

  it("finds nothing in valid data", () => {
    const { errors } = validator.validateFormData({ n: 10, op: "add" }, schema);
    expect(errors).toEqual([]);
  });

  it("words types and enums as ajv does", () => {
    const { errorSchema } = validator.validateFormData({ n: "ten", op: "div" }, schema);
    expect(errorSchema).toEqual({
      n: { __errors: ["must be integer"] },
      op: { __errors: ["must be equal to one of the allowed values"] },
    });
  });

  it("resolves references to the root's definitions when matching options", () => {
    const root: RJSFSchema = {
      definitions: { small: { type: "integer", maximum: 5 } },
      oneOf: [{ $ref: "#/definitions/small" }, { type: "string" }],
    };
    const option = { $ref: "#/definitions/small" } as RJSFSchema;
    expect(validator.isValid(option, 3, root)).toBe(true);
    expect(validator.isValid(option, 9, root)).toBe(false);
  });

  it("adds the custom validation's errors", () => {
    const { errorSchema } = validator.validateFormData({ n: 1, op: "add" }, schema, (data, errors) => {
      if (data?.n === 1) errors.n?.addError("one is not allowed");
      return errors;
    });
    expect(errorSchema).toMatchObject({ n: { __errors: ["one is not allowed"] } });
  });

  it("never evaluates code (the CSP has no 'unsafe-eval')", () => {
    const original = globalThis.Function;
    globalThis.Function = (() => {
      throw new Error("eval used");
    }) as unknown as FunctionConstructor;
    try {
      expect(validator.validateFormData({ n: 94, op: "mul" }, { ...schema }).errors).toHaveLength(1);
    } finally {
      globalThis.Function = original;
    }
  });
});

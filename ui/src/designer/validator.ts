// The config forms' JSON Schema validator for @rjsf, on @cfworker/json-schema: it interprets
// schemas instead of compiling them to code (as ajv does with `new Function`), so the app's
// Content-Security-Policy needs no 'unsafe-eval'. Errors are written as ajv writes them
// ("must be <= 93"), each under the field it is about, for the forms' inline errors.

import { type OutputUnit, type SchemaDraft, Validator } from "@cfworker/json-schema";
import {
  createErrorHandler,
  getDefaultFormState,
  toErrorSchema,
  unwrapErrorHandler,
  validationDataMerge,
  type CustomValidator,
  type ErrorSchema,
  type ErrorTransformer,
  type RJSFSchema,
  type RJSFValidationError,
  type UiSchema,
  type ValidationData,
  type ValidatorType,
} from "@rjsf/utils";

type Schema = RJSFSchema;

/** The draft a schema declares in `$schema` (2020-12 when it declares none, as the host). */
function draft(schema: Schema): SchemaDraft {
  const declared = typeof schema.$schema === "string" ? schema.$schema : "";
  if (declared.includes("draft-04")) return "4";
  if (declared.includes("draft-06") || declared.includes("draft-07")) return "7";
  if (declared.includes("2019-09")) return "2019-09";
  return "2020-12";
}

/** The value at JSON pointer `pointer` (`#/properties/n/maximum`) in `schema`, if any. */
function at(schema: unknown, pointer: string): unknown {
  let value = schema;
  for (const raw of pointer.replace(/^#\/?/, "").split("/").filter(Boolean)) {
    const key = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
    if (!value || typeof value !== "object") return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/** The property a required-property error names, from the validator's message. */
function missing(unit: OutputUnit): string | undefined {
  return /property "([^"]*)"/.exec(unit.error)?.[1];
}

/** An error's message as ajv words it, from the keyword's value in the schema; the validator's
 * own words for the rest. */
export function message(unit: OutputUnit, schema: unknown): string {
  const value = at(schema, unit.keywordLocation);
  const n = String(value);
  switch (unit.keyword) {
    case "maximum": return `must be <= ${n}`;
    case "minimum": return `must be >= ${n}`;
    case "exclusiveMaximum": return `must be < ${n}`;
    case "exclusiveMinimum": return `must be > ${n}`;
    case "multipleOf": return `must be multiple of ${n}`;
    case "type": return `must be ${Array.isArray(value) ? value.join(",") : n}`;
    case "required": return `must have required property '${missing(unit) ?? ""}'`;
    case "enum": return "must be equal to one of the allowed values";
    case "const": return "must be equal to constant";
    case "minLength": return `must NOT have fewer than ${n} characters`;
    case "maxLength": return `must NOT have more than ${n} characters`;
    case "pattern": return `must match pattern "${n}"`;
    case "format": return `must match format "${n}"`;
    case "minItems": return `must NOT have fewer than ${n} items`;
    case "maxItems": return `must NOT have more than ${n} items`;
    case "uniqueItems": return "must NOT have duplicate items";
    case "minProperties": return `must NOT have fewer than ${n} properties`;
    case "maxProperties": return `must NOT have more than ${n} properties`;
    case "additionalProperties": return "must NOT have additional properties";
    default: return unit.error.replace(/\.$/, "");
  }
}

/** The errors of `units` that are about the data itself, not wrappers of deeper errors
 * (`properties`, `items`, `allOf`, ...: an error whose schema location holds another's). */
function leaves(units: OutputUnit[]): OutputUnit[] {
  return units.filter(
    (u) => !units.some((o) => o !== u && o.keywordLocation.startsWith(`${u.keywordLocation}/`)),
  );
}

/** `#/a/0/b` -> `.a.0.b`, the property path @rjsf files errors under. */
function property(instanceLocation: string): string {
  return instanceLocation
    .replace(/^#/, "")
    .split("/")
    .filter(Boolean)
    .map((p) => `.${decodeURIComponent(p).replace(/~1/g, "/").replace(/~0/g, "~")}`)
    .join("");
}

/** @rjsf's errors for what the validator found in `units` against `schema`. */
export function toRjsfErrors(units: OutputUnit[], schema: unknown): RJSFValidationError[] {
  return leaves(units).map((unit) => {
    const text = message(unit, schema);
    let path = property(unit.instanceLocation);
    const name = unit.keyword === "required" ? missing(unit) : undefined;
    if (name !== undefined) path = `${path}.${name}`;
    return {
      name: unit.keyword,
      property: path,
      message: text,
      params: name !== undefined ? { missingProperty: name } : {},
      stack: `${path} ${text}`.trim(),
      schemaPath: unit.keywordLocation,
    };
  });
}

/** A schema with the root's definitions beside it, so `#/definitions/...` and `#/$defs/...`
 * references of a part of the root resolve within it. */
function withRootDefinitions(schema: Schema, root: Schema): Schema {
  if (schema === root) return schema;
  const merged: Schema = { ...schema };
  if (root.definitions) merged.definitions = { ...root.definitions, ...schema.definitions };
  if (root.$defs) merged.$defs = { ...root.$defs, ...schema.$defs };
  return merged;
}

/** A validator for @rjsf forms that never evaluates code. */
export class InterpretingValidator implements ValidatorType {
  /** Validators by schema object: a form validates against the same schema on every change. */
  private cache = new WeakMap<object, Validator>();

  private validatorFor(schema: Schema): Validator {
    let validator = this.cache.get(schema);
    if (!validator) {
      validator = new Validator(schema as Record<string, unknown>, draft(schema), false);
      this.cache.set(schema, validator);
    }
    return validator;
  }

  rawValidation<Result = RJSFValidationError>(
    schema: Schema,
    formData?: unknown,
  ): { errors?: Result[]; validationError?: Error } {
    try {
      const result = this.validatorFor(schema).validate(formData);
      return { errors: toRjsfErrors(result.errors, schema) as Result[] };
    } catch (error) {
      return { validationError: error instanceof Error ? error : new Error(String(error)) };
    }
  }

  validateFormData(
    formData: unknown,
    schema: Schema,
    customValidate?: CustomValidator,
    transformErrors?: ErrorTransformer,
    uiSchema?: UiSchema,
  ): ValidationData<unknown> {
    const raw = this.rawValidation<RJSFValidationError>(schema, formData);
    let errors = raw.errors ?? [];
    if (raw.validationError) errors = [...errors, { stack: raw.validationError.message }];
    if (transformErrors) errors = transformErrors(errors, uiSchema);
    const errorSchema: ErrorSchema = toErrorSchema(errors);
    if (raw.validationError) {
      // An unusable schema shows as an error of the form itself.
      (errorSchema as Record<string, unknown>).$schema = { __errors: [raw.validationError.message] };
    }
    if (!customValidate) return { errors, errorSchema };
    const full = getDefaultFormState(this, schema, formData, schema, true);
    const handler = customValidate(full, createErrorHandler(full), uiSchema, errorSchema);
    return validationDataMerge({ errors, errorSchema }, unwrapErrorHandler(handler));
  }

  /** `schema` with `root`'s definitions, made once per pair (so its validator is cached too). */
  private merged = new WeakMap<object, WeakMap<object, Schema>>();

  isValid(schema: Schema, formData: unknown, rootSchema: Schema): boolean {
    try {
      let byRoot = this.merged.get(schema);
      if (!byRoot) this.merged.set(schema, (byRoot = new WeakMap()));
      let merged = byRoot.get(rootSchema);
      if (!merged) byRoot.set(rootSchema, (merged = withRootDefinitions(schema, rootSchema)));
      return this.validatorFor(merged).validate(formData).valid;
    } catch {
      return false;
    }
  }
}

export const validator = new InterpretingValidator();
export default validator;

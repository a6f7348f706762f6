// The selected node's settings: its configuration as a form generated from the plugin's JSON
// Schema (@rjsf, validated live without eval, see ./validator), and the retry / timeout /
// on_error policy.

import Form from "@rjsf/core";
import type { RJSFSchema } from "@rjsf/utils";
import { memo } from "react";
import type { NodeSpec, OnError, PluginVersion } from "../api/types";
import { validator } from "./validator";

/** The form has no submit button: every change applies at once. */
const UI_SCHEMA = { "ui:submitButtonOptions": { norender: true } };

/** Memoised: dragging the selected node changes its position, not its settings, and the form
 * need not be drawn again on every frame of the drag. */
export const ConfigPanel = memo(function ConfigPanel({
  spec,
  plugin,
  onChange,
}: {
  spec: NodeSpec;
  plugin: PluginVersion | undefined;
  onChange: (spec: NodeSpec) => void;
}) {
  const schema = (plugin?.description.config_schema ?? {}) as RJSFSchema;
  return (
    <section className="config" aria-label={`Configuration of ${spec.id}`}>
      <h2>{spec.id}</h2>
      <p className="muted">
        {spec.type}
        {plugin ? ` — ${plugin.description.summary}` : " (unknown plugin)"}
      </p>
      <Form
        schema={schema}
        formData={spec.config}
        validator={validator}
        liveValidate
        showErrorList={false}
        uiSchema={UI_SCHEMA}
        onChange={(event) =>
          onChange({ ...spec, config: (event.formData ?? {}) as Record<string, unknown> })
        }
      />
      <fieldset className="policy">
        <legend>When it fails</legend>
        <label>
          Attempts
          <input
            type="number"
            min={1}
            value={spec.retry?.max_attempts ?? 1}
            onChange={(e) => {
              const attempts = Math.max(1, Number(e.target.value) || 1);
              const next = { ...spec };
              if (attempts > 1) next.retry = { ...spec.retry, max_attempts: attempts };
              else delete next.retry;
              onChange(next);
            }}
          />
        </label>
        <label>
          Timeout
          <input
            placeholder="e.g. 30s"
            value={spec.timeout ?? ""}
            onChange={(e) => {
              const next = { ...spec };
              if (e.target.value) next.timeout = e.target.value;
              else delete next.timeout;
              onChange(next);
            }}
          />
        </label>
        <label>
          On error
          <select
            value={spec.on_error ?? "fail"}
            onChange={(e) => onChange({ ...spec, on_error: e.target.value as OnError })}
          >
            <option value="fail">fail the run</option>
            <option value="skip_dependents">skip what depends on it</option>
            <option value="continue">continue without its outputs</option>
          </select>
        </label>
      </fieldset>
    </section>
  );
});

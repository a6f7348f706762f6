// A project's files: browse, upload, download, delete (through the projects API).

import { useCallback, useEffect, useState } from "react";
import { api, apiRaw } from "../api/client";
import type { FileEntry } from "../api/types";
import { ErrorBox } from "../components/ErrorBox";

function filePath(project: string, path: string): string {
  return `/projects/${project}/files/${path.split("/").map(encodeURIComponent).join("/")}`;
}

export function ProjectFiles({ projectId }: { projectId: string }) {
  const [files, setFiles] = useState<FileEntry[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      setFiles(await api<FileEntry[]>("GET", `/projects/${projectId}/files`));
    } catch (err) {
      setError(err);
    }
  }, [projectId]);
  useEffect(() => void load(), [load]);

  const run = async (what: string, action: () => Promise<void>) => {
    setBusy(what);
    setError(null);
    try {
      await action();
      await load();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  };

  return (
    <div className="files">
      <label className="file">
        Upload a file
        <input
          type="file"
          onChange={(e) => {
            const file = e.target.files?.[0];
            if (file) void run(`upload ${file.name}`, async () => void (await apiRaw("PUT", filePath(projectId, file.name), file)));
            e.target.value = "";
          }}
        />
      </label>
      {busy && <span aria-busy="true"> {busy}…</span>}
      <ErrorBox error={error} />
      {files === null ? (
        <p aria-busy="true">Loading files…</p>
      ) : files.length === 0 ? (
        <p className="muted">No files yet.</p>
      ) : (
        <table>
          <thead><tr><th>File</th><th>Size</th><th>Modified</th><th /></tr></thead>
          <tbody>
            {files.map((f) => (
              <tr key={f.path}>
                <td>{f.path}</td>
                <td>{f.size.toLocaleString()} B</td>
                <td>{f.modified ? new Date(f.modified).toLocaleString() : "—"}</td>
                <td>
                  <button type="button" aria-label={`Download ${f.path}`} onClick={() => run(`download ${f.path}`, async () => {
                    const blob = await (await apiRaw("GET", filePath(projectId, f.path))).blob();
                    const url = URL.createObjectURL(blob);
                    const a = document.createElement("a");
                    a.href = url;
                    a.download = f.path.split("/").pop() ?? f.path;
                    a.click();
                    URL.revokeObjectURL(url);
                  })}>Download</button>{" "}
                  <button type="button" aria-label={`Delete ${f.path}`} onClick={() => {
                    if (window.confirm(`Delete ${f.path}?`)) {
                      void run(`delete ${f.path}`, async () => void (await apiRaw("DELETE", filePath(projectId, f.path))));
                    }
                  }}>Delete</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

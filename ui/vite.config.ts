// Built by host/build.rs (`npm run build -- --outDir <OUT_DIR>/ui`); `npm run dev` serves the
// app with hot reload and sends the API to a Weft on 127.0.0.1:8080 (or $WEFT_URL).
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

export default defineConfig({
  plugins: [react()],
  // No public/ folder: every file is imported and hashed (host/build/ui.rs watches only what exists).
  publicDir: false,
  resolve: {
    alias: {
      // @rjsf/core's test helper (getTestRegistry, unused by the app) imports ajv's validator;
      // the app has its own, which never evaluates code (see src/designer/validator.ts).
      "@rjsf/validator-ajv8": fileURLToPath(new URL("src/designer/validator.ts", import.meta.url)),
    },
  },
  build: {
    // Hashed names under /assets/: the host serves them with a year-long immutable cache.
    assetsDir: "assets",
    emptyOutDir: true,
    sourcemap: false,
    reportCompressedSize: false,
    // elkjs (1.4 MB, 440 KB gzipped) is its worker's script, loaded when the designer opens.
    chunkSizeWarningLimit: 1600,
  },
  server: {
    proxy: { "/api": { target: process.env.WEFT_URL ?? "http://127.0.0.1:8080", ws: true } },
  },
});

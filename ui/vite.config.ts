// Built by host/build.rs (`npm run build -- --outDir <OUT_DIR>/ui`); `npm run dev` serves the
// app with hot reload and sends the API to a Weft on 127.0.0.1:8080 (or $WEFT_URL).
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

export default defineConfig({
  plugins: [react()],
  build: {
    // Hashed names under /assets/: the host serves them with a year-long immutable cache.
    assetsDir: "assets",
    emptyOutDir: true,
    sourcemap: false,
    reportCompressedSize: false,
    // elkjs (1.4 MB, 440 KB gzipped) is one chunk loaded only when a graph is laid out.
    chunkSizeWarningLimit: 1600,
  },
  server: {
    proxy: { "/api": { target: process.env.WEFT_URL ?? "http://127.0.0.1:8080", ws: true } },
  },
});

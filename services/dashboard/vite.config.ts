/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

const gateway = process.env.CORTEX_GATEWAY_URL ?? "http://127.0.0.1:8080";
// SSE streams must not be buffered or timed out by the dev proxy.
const proxied = { target: gateway, changeOrigin: true, timeout: 0, proxyTimeout: 0 };

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: {
      "/api": proxied,
      "/health": proxied,
      "/ready": proxied,
    },
  },
  build: {
    outDir: "dist",
    sourcemap: false,
  },
  test: {
    environment: "jsdom",
    setupFiles: ["./src/test/setup.ts"],
    css: false,
    // A test asserts what the user sees, not how fast: typing into jsdom on a busy 2-core
    // machine took over vitest's default 5 s.
    testTimeout: 30_000,
  },
});

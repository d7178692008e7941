// The stock ComfyUI editor on `serve`, in a real headless Chromium: the page loads without
// errors from our API, knows the packs' nodes, runs the UI-format demo with the Run button
// (the saved image shows in its node and in /history), and its own "Export (API)" agrees
// with our conversion on every generated UI case. Needs Debian's chromium and the
// comfyui-frontend-package in the host environment; says what it skipped otherwise.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { createHost, serve, type Host, type PromptServerHandle } from "../src/mod.ts";
import { convertUiWorkflow } from "../src/workflow/ui_workflow.ts";
import { findFrontendRoot } from "../src/server/frontend.ts";
import { UI_CASES } from "./shared/ui_cases.ts";

const root = join(import.meta.dirname, "..");
const CHROMIUM = process.env.PYISOLATE_CHROMIUM ?? "/usr/bin/chromium";
const ARTIFACTS = join(root, "test-results");
const tmp = mkdtempSync(join(tmpdir(), "pyisolate-browser-"));

let host: Host | undefined;
let server: PromptServerHandle | undefined;
let browser: Browser | undefined;
let page: Page;
let skip: string | null = existsSync(CHROMIUM) ? null : `${CHROMIUM} is missing (apt-get install chromium)`;
const problems: string[] = [];

/** What ComfyUI itself answers 404 to on a fresh install, and the page's own calls outside. */
const EXPECTED_404 = [/\/user\.css$/, /\/api\/userdata\/user\.css$/, /\/api\/userdata\?dir=(workflows|subgraphs)/, /\/api\/userdata\/comfy\.templates\.json$/,
  // The generated cases' image loader previews "other.png", which the input folder lacks (ComfyUI answers 404 too).
  /\/api\/view\?type=input&filename=other\.png&/];

beforeAll(async () => {
  if (skip) return;
  cpSync(join(root, "examples", "custom_nodes"), join(tmp, "custom_nodes"), { recursive: true });
  cpSync(join(root, "test", "fixtures", "ui_packs", "UiRules"), join(tmp, "custom_nodes", "UiRules"), { recursive: true });
  mkdirSync(join(tmp, "base"));
  host = await createHost({ customNodes: join(tmp, "custom_nodes"), cacheDir: join(tmp, "cache"), baseDir: join(tmp, "base"), inputDir: join(root, "examples", "input") });
  if (!findFrontendRoot(host.python.sitePackages)) {
    skip = "comfyui-frontend-package is not installed in the host environment";
    return;
  }
  server = await serve(host, { port: 0 });
  const { chromium } = await import("playwright-core");
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"], // launch() gives a fresh, temporary profile,
  });
  page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  const ours = server.url;
  page.on("response", (r) => {
    if (r.status() >= 400 && r.url().startsWith(ours) && !EXPECTED_404.some((re) => re.test(r.url()))) problems.push(`${r.status()} ${r.request().method()} ${r.url()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  // A first start opens the Templates dialog over the canvas. The page skips it once the
  // tutorial is marked done, as for a returning user, and then restores the last workflow of
  // the browser's storage: the demo (ComfyUI's default graph would need its built-in nodes).
  const set = await fetch(`${ours}/api/settings/Comfy.TutorialCompleted`, { method: "POST", body: "true" });
  expect(set.status).toBe(200);
  const demo = readFileSync(join(root, "examples", "workflows", "demo_ui.json"), "utf8");
  await page.addInitScript((w) => localStorage.setItem("workflow", w), demo);
  await page.goto(server.url);
  await page.waitForFunction(() => (window as unknown as { app?: { graph?: unknown } }).app?.graph !== undefined, null, { timeout: 120_000 });
  await page.waitForTimeout(1500);
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await host?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe("the ComfyUI editor in Chromium", () => {
  it("loads with no error from our API and knows the packs' nodes", async (t) => {
    if (skip) {
      console.log(`browser test not run: ${skip}`);
      return t.skip();
    }
    expect(problems).toEqual([]);
    // No first-start dialog: the page opened on the workflow restored from storage, the demo.
    expect(await page.locator(".p-dialog-mask").count()).toBe(0);
    const demoNodes = (JSON.parse(readFileSync(join(root, "examples", "workflows", "demo_ui.json"), "utf8")) as { nodes: unknown[] }).nodes.length;
    expect(await page.evaluate(() => (window as unknown as { app: { graph: { nodes: unknown[] } } }).app.graph.nodes.length)).toBe(demoNodes);
    const nodes = await page.evaluate(() => {
      const types = (window as unknown as { LiteGraph: { registered_node_types: Record<string, { nodeData?: { python_module?: string } }> } }).LiteGraph.registered_node_types;
      return Object.fromEntries(Object.entries(types).map(([k, v]) => [k, v.nodeData?.python_module ?? null]));
    });
    for (const name of Object.keys(host!.nodes())) expect(nodes, name).toHaveProperty(name);
    expect(nodes.NumpyLegacyInvert).toBe("custom_nodes.NumpyLegacyNode");
    // The node library (sidebar) lists the packs' nodes under their categories, with the pack's name as badge source.
    await page.keyboard.press("n");
    await page.waitForTimeout(800);
    const text = await page.evaluate(() => document.body.innerText);
    expect(text).toContain("Node Library");
  });

  it("exports every generated UI case as our conversion does", async (t) => {
    if (skip) return t.skip();
    const info = host!.nodes();
    for (const [name, make] of Object.entries(UI_CASES)) {
      const wf = make(info);
      const theirs = await page.evaluate(async (w) => {
        const app = (window as unknown as { app: { loadGraphData(w: unknown, clean?: boolean, restoreView?: boolean, workflow?: null, o?: { showMissingNodesDialog: boolean }): Promise<void>; graphToPrompt(): Promise<{ output: unknown }> } }).app;
        // A case with classes no pack provides would open the missing-nodes dialog over the canvas.
        await app.loadGraphData(structuredClone(w), true, true, null, { showMissingNodesDialog: false });
        return (await app.graphToPrompt()).output;
      }, wf as unknown as Record<string, unknown>);
      expect(convertUiWorkflow(wf, info), name).toEqual(theirs);
    }
  });

  it("runs the UI-format demo with the Run button: the image shows in its node and /history", async (t) => {
    if (skip) return t.skip();
    const demo = JSON.parse(readFileSync(join(root, "examples", "workflows", "demo_ui.json"), "utf8"));
    await page.evaluate(async (w) => {
      await (window as unknown as { app: { loadGraphData(w: unknown): Promise<void> } }).app.loadGraphData(w);
    }, demo);
    // With the tutorial marked done no dialog covers the canvas.
    expect(await page.locator(".p-dialog-mask").count()).toBe(0);
    const queued = page.waitForResponse((r) => /\/api\/prompt$/.test(new URL(r.url()).pathname) && r.request().method() === "POST");
    // The Run button of the top bar (a DOM click: its bar animates, which Playwright waits on).
    await page.evaluate(() => Array.from(document.querySelectorAll<HTMLButtonElement>('button[aria-label="Run"]')).find((b) => b.offsetParent !== null)!.click());
    const posted = (await (await queued).json()) as { prompt_id: string };
    const q = async () => (await (await fetch(`${server!.url}/api/queue`)).json()) as { queue_running: unknown[]; queue_pending: unknown[] };
    const deadline = Date.now() + 240_000;
    for (;;) {
      const s = await q();
      const h = (await (await fetch(`${server!.url}/api/history/${posted.prompt_id}`)).json()) as Record<string, unknown>;
      if (s.queue_running.length === 0 && s.queue_pending.length === 0 && h[posted.prompt_id]) break;
      if (Date.now() > deadline) throw new Error("the prompt did not finish in 240 s");
      await new Promise((r) => setTimeout(r, 500));
    }
    const entry = ((await (await fetch(`${server!.url}/api/history/${posted.prompt_id}`)).json()) as Record<string, { status: { status_str: string }; outputs: Record<string, { images?: { filename: string }[] }> }>)[posted.prompt_id]!;
    expect(entry.status.status_str).toBe("success");
    const file = entry.outputs["4"]!.images![0]!.filename;
    expect(file).toMatch(/^demo_\d+_\.png$/);
    // The Save node shows the image the server saved, fetched through /view.
    await page.waitForFunction((f) => Array.from(document.querySelectorAll("img")).some((i) => i.src.includes("/view") && i.src.includes(f)) ||
      ((window as unknown as { app: { graph: { getNodeById(id: number): { imgs?: HTMLImageElement[] } | null } } }).app.graph.getNodeById(4)?.imgs ?? []).some((i) => i.src.includes(f)), file, { timeout: 30_000 });
    mkdirSync(ARTIFACTS, { recursive: true });
    // For the picture: the node library (opened above) closed, the graph fitted to the view.
    if (await page.getByText("Node Library").count()) {
      await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
      await page.keyboard.press("n");
      await page.waitForTimeout(500);
    }
    await page.evaluate(() => Array.from(document.querySelectorAll<HTMLButtonElement>('button[aria-label="Fit View (.)"]')).find((b) => b.offsetParent !== null)?.click());
    await page.waitForTimeout(1000);
    await page.screenshot({ path: join(ARTIFACTS, "editor.png") });
    expect(problems).toEqual([]);
  });
});

// The condpred viewer's only script: starting a tree, and the continuation tree's panel
// (next-token distribution, sampling children, picking a token, marking a node). Every
// write sends this server's token (from the page's meta tag) and reloads the page, so what is
// shown is always what the store holds. Text from the store is only ever set as textContent.
"use strict";

const token = () => document.querySelector('meta[name="condpred-token"]')?.content ?? "";

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", "x-condpred-token": token() },
    body: JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function say(text) {
  const status = document.getElementById("status");
  if (status) status.textContent = text;
}

// "start a continuation tree" / "branch from this sample" buttons on run and conditional pages.
for (const button of document.querySelectorAll("button.start-tree")) {
  button.addEventListener("click", async () => {
    button.disabled = true;
    const body = { run: button.dataset.run, cond: Number(button.dataset.cond) };
    if (button.dataset.sample !== undefined) body.sample = Number(button.dataset.sample);
    try {
      const made = await post("/api/trees", body);
      window.location.href = made.url;
    } catch (error) {
      button.disabled = false;
      button.textContent = "failed: " + error.message;
    }
  });
}

const panel = document.getElementById("panel");
if (panel) {
  const tree = panel.dataset.tree;
  const writable = panel.dataset.writable === "yes";
  let point = null; // { node, at } where at is null for "after the whole node"
  let requests = 0;

  async function select(element) {
    document.querySelectorAll(".selected").forEach((e) => e.classList.remove("selected"));
    element.classList.add("selected");
    const node = Number(element.dataset.node);
    const at = element.dataset.at === "" ? null : Number(element.dataset.at);
    point = { node, at };
    window.location.hash = `node-${node}` + (at === null ? "" : `-at-${at}`);
    document.getElementById("where").textContent =
      at === null ? `after the whole of node #${node}` : `before token ${at} of node #${node}`;
    if (!writable) return;
    document.getElementById("sample-button").disabled = false;
    document.getElementById("mark-button").disabled = false;
    const query = new URLSearchParams({ node, top_k: 10 });
    if (at !== null) query.set("at", at);
    const body = document.querySelector("#next-tokens tbody");
    body.replaceChildren(); // never show one point's tokens under another's name
    const asked = ++requests;
    say("computing the next-token distribution…");
    const response = await fetch(`/api/trees/${tree}/next?${query}`);
    const data = await response.json();
    if (asked !== requests) return; // a later click superseded this one
    if (!response.ok) return say(data.error);
    for (const t of data.tokens) {
      const row = body.insertRow();
      const code = document.createElement("code");
      code.textContent = JSON.stringify(t.token);
      row.insertCell().append(code);
      const meter = document.createElement("meter");
      meter.min = 0; meter.max = 1; meter.value = t.prob;
      row.insertCell().append(meter, " " + t.prob.toFixed(4));
      const pick = document.createElement("button");
      pick.textContent = "pick";
      pick.className = "pick";
      pick.addEventListener("click", () => write("pick", { token_id: t.id, top_k: 10 }));
      row.insertCell().append(pick);
    }
    say("");
  }

  async function write(what, extra) {
    say("working…");
    try {
      const made = await post(`/api/trees/${tree}/${what}`, { ...point, ...extra });
      const first = made.nodes ? made.nodes[0] : made.node;
      window.location.hash = `node-${first}`;
      window.location.reload();
    } catch (error) {
      say("refused: " + error.message);
    }
  }

  // After a write the page reloads with the new node in the address: select where it ends.
  const shown = /^#node-(\d+)(?:-at-(\d+))?$/.exec(window.location.hash);
  if (shown) {
    const selector = shown[2] === undefined
      ? `.branch-end[data-node="${shown[1]}"]`
      : `.tok[data-node="${shown[1]}"][data-at="${shown[2]}"]`;
    const element = document.querySelector(selector);
    if (element) select(element);
  }

  document.querySelector(".tree").addEventListener("click", (event) => {
    const target = event.target.closest(".tok[data-node], .branch-end");
    if (target) select(target);
  });
  document.getElementById("sample-form")?.addEventListener("submit", (event) => {
    event.preventDefault();
    const form = Object.fromEntries(new FormData(event.target));
    write("sample", {
      n: Number(form.n), max_new_tokens: Number(form.max_new_tokens),
      temperature: Number(form.temperature), top_p: Number(form.top_p), seed: Number(form.seed),
    });
  });
  document.getElementById("mark-button")?.addEventListener("click", () => {
    const node = document.getElementById(`node-${point.node}`);
    write("mark", { marked: !node.classList.contains("marked") });
  });
}

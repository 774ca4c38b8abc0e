// The edge's own page at http://EDGE:PORT/ for the clinic's staff: the link and its
// throughput, the routine schedule, and the outbound queue per study with progress, time to the
// hub and failures with their reason (from /edge/status and /edge/queue, every 2 s), without
// patient name or ID and without login; and, for the clinic's doctors signed in with their
// usual account, the reports, critical results, consults and referrals the hub sent back
// (/api/inbox), with the critical results acknowledged here; the studies kept here (sent, and
// priors pulled from the hub on request, /api/priors) with a simple image view (DICOMweb
// rendered frames). Chinese by default, English with ?lang=en.
#pragma once

namespace yilian::app {

inline constexpr const char* kEdgePage = R"html(<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Yilian 前置机</title>
<style>
body { font: 15px/1.5 system-ui, "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; margin: 0;
       color: #1d2733; background: #f4f6f8; }
header { background: #0d4f8b; color: #fff; padding: 10px 18px; display: flex; gap: 18px;
         align-items: baseline; flex-wrap: wrap; }
header h1 { font-size: 18px; margin: 0; }
main { padding: 14px 18px; }
.up { color: #0a7d32; font-weight: 600; } .down { color: #b3261e; font-weight: 600; }
header .up, header .down { background: #fff; padding: 1px 8px; border-radius: 4px; }
.error { color: #b3261e; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #dde3ea; vertical-align: top; }
th { background: #e8edf2; font-weight: 600; }
tr.stat td:first-child { color: #b3261e; font-weight: 700; }
.bar { width: 140px; height: 10px; background: #dde3ea; border-radius: 5px; overflow: hidden;
       display: inline-block; vertical-align: middle; margin-right: 6px; }
.bar span { display: block; height: 100%; background: #0d4f8b; }
small { color: #5b6b7c; display: block; }
a { color: inherit; }
h2 { font-size: 17px; margin: 22px 0 8px; }
form label { margin-right: 10px; }
.item { background: #fff; border: 1px solid #dde3ea; border-radius: 6px; padding: 8px 12px;
        margin-bottom: 8px; }
.item.open { border-color: #b3261e; border-width: 2px; }
.item h3 { font-size: 15px; margin: 0 0 4px; }
.item p { margin: 4px 0; white-space: pre-wrap; }
</style>
</head>
<body>
<header>
  <h1 data-t="title"></h1>
  <span id="link"></span>
  <span id="rate"></span>
  <span id="routine"></span>
  <span id="institution"></span>
  <a id="lang" href="?lang=en">English</a>
</header>
<main>
  <p id="lastError" class="error" role="alert"></p>
  <table>
    <thead><tr>
      <th data-t="priority"></th><th data-t="study"></th><th data-t="progress"></th>
      <th data-t="state"></th><th data-t="eta"></th><th data-t="failures"></th>
    </tr></thead>
    <tbody id="queue"></tbody>
  </table>
  <p id="empty" data-t="empty" hidden></p>
  <h2 data-t="inbox"></h2>
  <form id="login">
    <label><span data-t="username"></span> <input name="username" autocomplete="username"></label>
    <label><span data-t="password"></span>
      <input name="password" type="password" autocomplete="current-password"></label>
    <button type="submit" data-t="signIn"></button>
    <span id="loginError" class="error" role="alert"></span>
  </form>
  <div id="inbox" hidden>
    <p><span id="who"></span> <button type="button" id="signOut" data-t="signOut"></button>
      <small id="synced"></small></p>
    <div id="items"></div>
    <h2 data-t="ecgUpload"></h2>
    <form id="ecgForm">
      <label><span data-t="patientId"></span> <input name="patientId" required></label>
      <label><span data-t="patient"></span> <input name="patientName"></label>
      <label><input type="file" name="file" accept=".xml,.dcm" required></label>
      <button type="submit" data-t="send"></button>
      <span id="ecgResult" role="status"></span>
    </form>
    <img id="ecgPage" alt="" hidden style="max-width: 100%; background: #fff">
    <h2 data-t="kept"></h2>
    <form id="priorsForm">
      <label><span data-t="patientId"></span> <input name="patientId" id="priorPatient"></label>
      <button type="submit" data-t="pullPriors"></button>
      <span id="priorsError" class="error" role="alert"></span>
    </form>
    <ul id="priors"></ul>
    <table>
      <thead><tr><th data-t="patient"></th><th data-t="study"></th><th data-t="images"></th></tr></thead>
      <tbody id="kept"></tbody>
    </table>
    <div id="viewer" hidden>
      <h3 id="viewerTitle"></h3>
      <div id="seriesList"></div>
      <input type="range" id="slice" min="1" value="1"> <span id="sliceLabel"></span>
      <div><img id="frame" alt="" style="max-width: 100%; background: #000"></div>
    </div>
  </div>
</main>
<script>
"use strict";
const en = new URLSearchParams(location.search).get("lang") === "en";
const T = en ? {
  title: "Yilian edge node", up: "Link up", down: "Link down", priority: "Priority",
  study: "Study", progress: "At the hub", state: "State", eta: "Time to the hub",
  failures: "Failures", empty: "Nothing to send.", stat: "STAT", routine: "Routine",
  queued: "Waiting", sending: "Sending", sent: "At the hub", complete: "Complete at the hub",
  failed: "Failed", held: "Routine traffic held by the schedule", cap: "Routine cap",
  none: "no cap", institution: "Institution", unknown: "—", s: "s", min: "min",
  inbox: "Reports, critical results, consults and referrals", username: "Username", password: "Password",
  signIn: "Sign in", signOut: "Sign out", badLogin: "Wrong username or password",
  criticalOpen: "Critical result — not yet acknowledged", criticalDone: "Critical result",
  acknowledge: "Acknowledge", acknowledgedBy: "acknowledged by", pending: "(to be sent to the hub)",
  report: "Report", addendum: "Addendum", lastSync: "Last received from the hub:",
  noItems: "No reports yet.", impression: "Impression", findings: "Findings",
  consult: "Consult", referral_up: "Referral up", referral_down: "Referral down",
  question: "Question", opinion: "Opinion", reason: "Reason", answer: "Answer",
  slot: "Appointment", discharge: "Discharge summary", followUp: "Follow-up plan",
  kept: "Studies kept here", patientId: "Patient ID", ecgUpload: "Send an ECG (HL7 aECG or DICOM)",
  send: "Send", ecgSent: "Stored here; on its way to the hub first (STAT)",
  pullPriors: "Pull priors from the hub", patient: "Patient", images: "Images",
  fromHub: "prior from the hub", series: "Series",
  priorState: { queued: "waiting", pulling: "pulling", done: "done", failed: "failed" },
  status: { requested: "requested", accepted: "accepted", in_progress: "in progress",
            concluded: "opinion given", declined: "declined", cancelled: "cancelled",
            rejected: "rejected", scheduled: "scheduled", arrived: "arrived",
            completed: "completed" }
} : {
  title: "Yilian 前置机", up: "链路正常", down: "链路中断", priority: "优先级",
  study: "检查", progress: "已到中心", state: "状态", eta: "预计到达", failures: "失败",
  empty: "没有待发送的检查。", stat: "急诊", routine: "常规", queued: "等待发送",
  sending: "正在发送", sent: "已到中心", complete: "已完整到达中心", failed: "失败",
  held: "按时段暂停常规传输", cap: "常规限速", none: "不限速", institution: "机构",
  unknown: "—", s: "秒", min: "分钟",
  inbox: "报告、危急值、会诊与转诊", username: "用户名", password: "密码", signIn: "登录", signOut: "退出",
  badLogin: "用户名或密码错误", criticalOpen: "危急值 — 尚未确认", criticalDone: "危急值",
  acknowledge: "确认收到", acknowledgedBy: "确认人", pending: "（待发送到中心）",
  report: "报告", addendum: "补充报告", lastSync: "最近从中心接收：", noItems: "暂无报告。",
  impression: "诊断意见", findings: "检查所见",
  consult: "会诊", referral_up: "上转", referral_down: "下转", question: "会诊目的",
  opinion: "会诊意见", reason: "转诊原因", answer: "接收方答复", slot: "预约", discharge: "出院小结",
  followUp: "随访计划", ecgUpload: "上传心电图（HL7 aECG 或 DICOM）", send: "发送",
  ecgSent: "已保存在本机，正优先发送到中心", kept: "本机保存的检查", patientId: "患者编号", pullPriors: "从中心调阅既往检查",
  patient: "患者", images: "图像", fromHub: "从中心调阅的既往检查", series: "序列",
  priorState: { queued: "等待", pulling: "正在调阅", done: "完成", failed: "失败" },
  status: { requested: "已申请", accepted: "已接受", in_progress: "会诊中", concluded: "已出意见",
            declined: "已拒绝", cancelled: "已取消", rejected: "已拒绝", scheduled: "已预约",
            arrived: "已到院", completed: "已完成" }
};
document.documentElement.lang = en ? "en" : "zh-CN";
document.title = T.title;
const langLink = document.getElementById("lang");
langLink.textContent = en ? "中文" : "English";
langLink.href = en ? "?" : "?lang=en";
for (const el of document.querySelectorAll("[data-t]")) el.textContent = T[el.dataset.t];
const text = (id, s, cls) => { const e = document.getElementById(id); e.textContent = s;
  if (cls !== undefined) e.className = cls; };
function mbps(bytesPerSecond) { return (bytesPerSecond * 8 / 1e6).toFixed(1) + " Mb/s"; }
function eta(s) {
  if (s < 0) return T.unknown;
  return s < 90 ? Math.ceil(s) + " " + T.s : Math.ceil(s / 60) + " " + T.min;
}
function dicomDate(d, t) {
  const day = d && d.length === 8 ? d.slice(0, 4) + "-" + d.slice(4, 6) + "-" + d.slice(6) : "";
  const time = t && t.length >= 4 ? " " + t.slice(0, 2) + ":" + t.slice(2, 4) : "";
  return day + time;
}
function cell(tr, content, cls) {
  const td = document.createElement("td");
  if (content instanceof Node) td.appendChild(content); else td.textContent = content;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}
async function refresh() {
  try {
    const [status, queue] = await Promise.all([
      fetch("/edge/status").then((r) => r.json()),
      fetch("/edge/queue").then((r) => r.json())]);
    const up = status.link === "up";
    text("link", up ? T.up : T.down, up ? "up" : "down");
    text("rate", status.bytesPerSecond > 0 ? mbps(status.bytesPerSecond) : "");
    const r = status.routine || {};
    text("routine", r.held ? T.held : T.cap + ": " + (r.capKbps > 0 ? r.capKbps + " kb/s" : T.none));
    text("institution", status.institution ? T.institution + ": " + status.institution : "");
    text("lastError", up ? "" : (status.lastError || ""));
    const body = document.getElementById("queue");
    body.replaceChildren();
    for (const s of queue.studies) {
      const tr = document.createElement("tr");
      tr.dataset.study = s.study;
      tr.className = s.priority;
      cell(tr, T[s.priority] || s.priority);
      const study = document.createElement("div");
      study.textContent = [s.modalities, s.description].filter(Boolean).join(" · ") || s.study;
      const when = document.createElement("small");
      when.textContent = dicomDate(s.studyDate, s.studyTime);
      study.appendChild(when);
      cell(tr, study);
      const progress = document.createElement("div");
      const bar = document.createElement("span");
      bar.className = "bar";
      const fill = document.createElement("span");
      fill.style.width = (s.instances ? 100 * s.sent / s.instances : 0) + "%";
      bar.appendChild(fill);
      progress.appendChild(bar);
      progress.appendChild(document.createTextNode(s.sent + " / " + s.instances));
      cell(tr, progress);
      cell(tr, T[s.state] || s.state);
      cell(tr, s.state === "queued" || s.state === "sending" ? eta(s.etaSeconds) : "");
      cell(tr, s.failures.join("\n"), "error");
      body.appendChild(tr);
    }
    document.getElementById("empty").hidden = queue.studies.length > 0;
  } catch (e) {
    text("link", T.down, "down");
  }
}
// The back channel: the clinic's doctors sign in with their usual account (kept at the edge,
// so this works while the link is down).
let token = sessionStorage.getItem("yilian.edge.token") || "";
function el(tag, cls, content) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (content !== undefined) e.textContent = content;
  return e;
}
async function inbox() {
  document.getElementById("login").hidden = !!token;
  document.getElementById("inbox").hidden = !token;
  if (!token) return;
  const r = await fetch("/api/inbox", { headers: { Authorization: "Bearer " + token } });
  if (r.status === 401) { token = ""; sessionStorage.removeItem("yilian.edge.token"); return inbox(); }
  if (!r.ok) return;
  kept();
  const data = await r.json();
  text("synced", data.lastSync ? T.lastSync + " " + new Date(data.lastSync).toLocaleString() : "");
  const items = document.getElementById("items");
  items.replaceChildren();
  if (!data.items.length) items.appendChild(el("p", "", T.noItems));
  for (const i of data.items) {
    const open = i.kind === "critical" && !i.acknowledgedBy;
    const box = el("div", "item" + (open ? " open" : ""));
    box.dataset.kind = i.kind;
    box.dataset.id = i.id;
    if (i.kind === "consult" || i.kind === "referral") {
      const consult = i.kind === "consult";
      const what = consult ? T.consult + " · " + i.specialty
                           : T["referral_" + i.direction] + " · " + i.otherInstitution;
      box.appendChild(el("h3", "", what + " · " + (T.status[i.status] || i.status) + " · " +
                                   (i.patient.name || "") + " " + (i.patient.id || "")));
      const line = (label, value) => { if (value) box.appendChild(el("p", "", label + ": " + value)); };
      line(consult ? T.question : T.reason, consult ? i.question : i.reason);
      line(consult ? T.opinion : T.answer, consult ? i.opinion : i.answer);
      if (!consult) {
        line(T.slot, i.slotDate);
        line(T.discharge, i.dischargeSummary);
        line(T.followUp, i.followUpPlan);
      }
      box.appendChild(el("small", "", new Date(i.updatedAt).toLocaleString() +
                                      (consult && i.specialist ? " · " + i.specialist : "")));
      items.appendChild(box);
      continue;
    }
    const title = i.kind === "critical" ? (open ? T.criticalOpen : T.criticalDone)
                                        : (i.reportKind === "addendum" ? T.addendum : T.report);
    box.appendChild(el("h3", open ? "error" : "", title + " · " + (i.patient.name || "") + " " +
                                               (i.patient.id || "") + " · " + (i.modalities || "")));
    if (i.findings) box.appendChild(el("p", "", T.findings + ": " + i.findings));
    box.appendChild(el("p", "", T.impression + ": " + i.impression));
    box.appendChild(el("small", "", new Date(i.createdAt).toLocaleString() +
                                    (i.author ? " · " + i.author : "")));
    if (i.kind === "critical" && i.acknowledgedBy) {
      box.appendChild(el("small", "", T.acknowledgedBy + " " + i.acknowledgedBy + " " +
                                      (i.sentToHub ? "" : T.pending)));
    }
    if (open) {
      const b = el("button", "", T.acknowledge);
      b.type = "button";
      b.onclick = async () => {
        await fetch("/api/inbox/critical/" + i.id + "/acknowledge",
                    { method: "POST", headers: { Authorization: "Bearer " + token } });
        inbox();
      };
      box.appendChild(b);
    }
    items.appendChild(box);
  }
}
// Studies kept here (sent, and priors pulled): DICOMweb of the edge, the images rendered here.
const auth = () => ({ Authorization: "Bearer " + token });
const tag = (o, t) => { const v = o[t] && o[t].Value && o[t].Value[0];
  return v === undefined ? "" : (typeof v === "object" ? (v.Alphabetic || "") : String(v)); };
let priorStudies = new Set();
async function priors() {
  const r = await fetch("/api/priors", { headers: auth() });
  if (!r.ok) return;
  const list = document.getElementById("priors");
  list.replaceChildren();
  priorStudies = new Set();
  for (const q of (await r.json()).requests.slice(0, 5)) {
    for (const u of q.studyInstanceUids) priorStudies.add(u);
    const li = el("li", q.state === "failed" ? "error" : "", q.patientId + " · " +
                  (T.priorState[q.state] || q.state) + (q.detail ? " · " + q.detail : ""));
    li.dataset.request = q.id;
    li.dataset.state = q.state;
    list.appendChild(li);
  }
}
async function kept() {
  await priors();
  const r = await fetch("/dicom-web/studies?limit=100", { headers: auth() });
  if (!r.ok) return;
  const body = document.getElementById("kept");
  body.replaceChildren();
  for (const s of (r.status === 204 ? [] : await r.json())) {
    const uid = tag(s, "0020000D");
    const tr = document.createElement("tr");
    tr.dataset.study = uid;
    cell(tr, tag(s, "00100010") + " " + tag(s, "00100020"));
    const what = document.createElement("a");
    what.href = "#";
    what.textContent = [dicomDate(tag(s, "00080020")), tag(s, "00080061"), tag(s, "00081030")]
                         .filter(Boolean).join(" · ") || uid;
    what.onclick = (e) => { e.preventDefault(); view(uid, what.textContent); };
    const c = cell(tr, what);
    if (priorStudies.has(uid)) c.appendChild(el("small", "", T.fromHub));
    cell(tr, tag(s, "00201208"));
    body.appendChild(tr);
  }
}
let frameUrl = "";
async function showFrame(base, instances) {
  const n = Number(document.getElementById("slice").value);
  text("sliceLabel", n + " / " + instances.length);
  const r = await fetch(base + "/instances/" + instances[n - 1] + "/rendered",
                        { headers: { ...auth(), Accept: "image/png" } });
  if (!r.ok) return;
  if (frameUrl) URL.revokeObjectURL(frameUrl);
  frameUrl = URL.createObjectURL(await r.blob());
  const img = document.getElementById("frame");
  img.src = frameUrl;
  img.dataset.instance = instances[n - 1];
}
async function openSeries(study, series) {
  const base = "/dicom-web/studies/" + study + "/series/" + series;
  const r = await fetch(base + "/instances", { headers: auth() });
  if (!r.ok) return;
  const found = await r.json();
  found.sort((a, b) => Number(tag(a, "00200013")) - Number(tag(b, "00200013")));
  const instances = found.map((i) => tag(i, "00080018"));
  const slider = document.getElementById("slice");
  slider.max = instances.length;
  slider.value = 1;
  slider.oninput = () => showFrame(base, instances);
  await showFrame(base, instances);
}
async function view(study, title) {
  document.getElementById("viewer").hidden = false;
  text("viewerTitle", title);
  const r = await fetch("/dicom-web/studies/" + study + "/series", { headers: auth() });
  if (!r.ok) return;
  const list = document.getElementById("seriesList");
  list.replaceChildren();
  const series = await r.json();
  for (const s of series) {
    const b = el("button", "", T.series + " " + tag(s, "00200011") + " " + tag(s, "00080060") +
                               " (" + tag(s, "00201209") + ")");
    b.type = "button";
    b.onclick = () => openSeries(study, tag(s, "0020000E"));
    list.appendChild(b);
  }
  if (series.length) await openSeries(study, tag(series[0], "0020000E"));
}
document.getElementById("ecgForm").onsubmit = async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const file = f.get("file");
  const type = /\.xml$/i.test(file.name) ? "application/xml" : "application/dicom";
  const q = "?patientId=" + encodeURIComponent(f.get("patientId")) +
            "&patientName=" + encodeURIComponent(f.get("patientName"));
  const r = await fetch("/api/ecg" + q, { method: "POST",
    headers: { ...auth(), "Content-Type": type }, body: await file.arrayBuffer() });
  const j = await r.json();
  if (!r.ok) { text("ecgResult", (j.error || {}).message || r.status, "error"); return; }
  text("ecgResult", T.ecgSent, "");
  const png = await fetch(j.render, { headers: auth() });
  if (png.ok) {
    const img = document.getElementById("ecgPage");
    img.src = URL.createObjectURL(await png.blob());
    img.hidden = false;
  }
  kept();
};
document.getElementById("priorsForm").onsubmit = async (e) => {
  e.preventDefault();
  const r = await fetch("/api/priors", { method: "POST", headers: auth(),
    body: JSON.stringify({ patientId: document.getElementById("priorPatient").value.trim() }) });
  text("priorsError", r.ok ? "" : ((await r.json()).error || {}).message || r.status);
  kept();
};
document.getElementById("login").onsubmit = async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const r = await fetch("/api/auth/login", { method: "POST",
    body: JSON.stringify({ username: f.get("username"), password: f.get("password") }) });
  if (!r.ok) { text("loginError", T.badLogin); return; }
  const j = await r.json();
  token = j.token;
  sessionStorage.setItem("yilian.edge.token", token);
  text("loginError", "");
  text("who", f.get("username"));
  inbox();
};
document.getElementById("signOut").onclick = async () => {
  await fetch("/api/auth/logout", { method: "POST", headers: { Authorization: "Bearer " + token } });
  token = "";
  sessionStorage.removeItem("yilian.edge.token");
  inbox();
};
refresh();
inbox();
setInterval(refresh, 2000);
setInterval(inbox, 10000);
</script>
</body>
</html>
)html";

}  // namespace yilian::app

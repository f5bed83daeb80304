// SPDX-License-Identifier: ISC
/*
 * status: the behaviour of tern's status page.  Every POLL_MS it asks
 * /api/v1/stats for counts and the last hour's queue sizes, and the
 * queue listing for deferred and held messages; the buttons call the
 * flush, hold, release and delete endpoints and then poll at once so
 * the page shows the result.  The token goes in an Authorization
 * header, never in a URL, and is kept in sessionStorage for this tab.
 */
"use strict";

const POLL_MS = 5000;
const LIST_LIMIT = 100;
const SERIES = [
    ["incoming", "#7a9cc6"],
    ["active", "#2364aa"],
    ["deferred", "#d08c1f"],
    ["hold", "#8a4fb0"],
];

const state = {
    token: sessionStorage.getItem("tern-token") || "",
    selected: null,
    messages: new Map(),
    timer: null,
};

function $(id) {
    return document.getElementById(id);
}

function notice(text, isError) {
    const n = $("notice");
    n.textContent = text;
    n.className = isError ? "error" : "";
}

// Call the API; resolves to the decoded JSON, rejects with the API's
// error message.
async function api(method, path, body) {
    const opts = {method: method, headers: {}};
    if (state.token)
        opts.headers["Authorization"] = "Bearer " + state.token;
    if (body !== undefined) {
        opts.headers["Content-Type"] = "application/json";
        opts.body = JSON.stringify(body);
    }
    const resp = await fetch(path, opts);
    let data = null;
    try {
        data = await resp.json();
    } catch (e) {
        data = null;
    }
    if (!resp.ok) {
        const msg = data && data.error ? data.error.message : resp.statusText;
        const err = new Error(msg);
        err.status = resp.status;
        throw err;
    }
    return data;
}

function fmtDuration(secs) {
    secs = Math.max(0, Math.floor(secs));
    if (secs < 60)
        return secs + "s";
    if (secs < 3600)
        return Math.floor(secs / 60) + "m";
    if (secs < 86400)
        return Math.floor(secs / 3600) + "h" + Math.floor(secs % 3600 / 60) + "m";
    return Math.floor(secs / 86400) + "d" + Math.floor(secs % 86400 / 3600) + "h";
}

function setText(id, value) {
    $(id).textContent = value === undefined || value === null ? "–" : value;
}

function svg(tag, attrs) {
    const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const k in attrs)
        el.setAttribute(k, attrs[k]);
    return el;
}

// Lines of queue sizes per minute; minutes without a sample are gaps.
function drawChart(history) {
    const chart = $("chart");
    const w = 600, h = 200, left = 40, bottom = 20, top = 10;
    let max = 1;
    for (const [name] of SERIES)
        for (const v of history[name] || [])
            if (v !== null && v > max)
                max = v;
    chart.replaceChildren();
    chart.appendChild(svg("line", {x1: left, y1: h - bottom, x2: w,
                                   y2: h - bottom, class: "axis"}));
    chart.appendChild(svg("line", {x1: left, y1: top, x2: left,
                                   y2: h - bottom, class: "axis"}));
    const ymax = svg("text", {x: 2, y: top + 8});
    ymax.textContent = String(max);
    chart.appendChild(ymax);
    const y0 = svg("text", {x: 2, y: h - bottom});
    y0.textContent = "0";
    chart.appendChild(y0);
    const xl = svg("text", {x: left, y: h - 4});
    xl.textContent = "-60 min";
    chart.appendChild(xl);
    const xr = svg("text", {x: w - 30, y: h - 4});
    xr.textContent = "now";
    chart.appendChild(xr);
    for (const [name, color] of SERIES) {
        const values = history[name] || [];
        const step = (w - left) / Math.max(1, values.length - 1);
        let d = "";
        let pen = false;
        values.forEach(function (v, i) {
            if (v === null) {
                pen = false;
                return;
            }
            const x = left + i * step;
            const y = h - bottom - (h - bottom - top) * v / max;
            d += (pen ? " L" : " M") + x.toFixed(1) + " " + y.toFixed(1);
            pen = true;
        });
        if (d)
            chart.appendChild(svg("path", {d: d, fill: "none", stroke: color,
                                           "stroke-width": 2,
                                           "stroke-linecap": "round",
                                           "data-series": name}));
        // The newest sample as a dot, so that a lone minute shows.
        const last = values.length - 1;
        if (last >= 0 && values[last] !== null)
            chart.appendChild(svg("circle", {
                cx: left + last * step, r: 3, fill: color,
                cy: h - bottom - (h - bottom - top) * values[last] / max}));
    }
}

function drawLegend() {
    const ul = $("legend");
    ul.replaceChildren();
    for (const [name, color] of SERIES) {
        const li = document.createElement("li");
        const sw = document.createElement("span");
        sw.style.background = color;
        li.appendChild(sw);
        li.appendChild(document.createTextNode(name));
        ul.appendChild(li);
    }
}

function showStats(s) {
    setText("version", "version " + s.version);
    setText("uptime", "up " + fmtDuration(s.uptime));
    for (const k of ["incoming", "active", "deferred", "hold", "corrupt"])
        setText("q-" + k, s.queue[k]);
    for (const k of ["received", "delivered", "deferred", "bounced",
                     "rejected"])
        setText("t-" + k, s.totals[k]);
    setText("t-open", s.connections.open);
    drawChart(s.queue_history);
}

function selectRow(id) {
    state.selected = state.selected === id ? null : id;
    for (const tr of $("rows").children)
        tr.classList.toggle("selected", tr.dataset.id === state.selected);
    const m = state.selected ? state.messages.get(state.selected) : null;
    $("hold").disabled = !m || m.state === "hold";
    $("release").disabled = !m || m.state !== "hold";
    $("delete").disabled = !m;
    $("selected").textContent = m ? "selected " + m.id : "";
}

function showMessages(list) {
    const tbody = $("rows");
    const now = Date.now() / 1000;
    state.messages = new Map(list.map(function (m) { return [m.id, m]; }));
    if (state.selected && !state.messages.has(state.selected))
        state.selected = null;
    tbody.replaceChildren();
    for (const m of list) {
        const tr = document.createElement("tr");
        tr.dataset.id = m.id;
        const cells = [
            [m.id, "id"],
            [m.state, "state"],
            [fmtDuration(now - (m.arrival_time || now)), "age"],
            [m.sender || "<>", "sender"],
            [(m.recipients || []).filter(function (r) {
                return r.state === "pending" || r.state === "deferred";
            }).map(function (r) { return r.address; }).join(", "), "rcpts"],
            [m.reason || "", "reason"],
        ];
        for (const [text, cls] of cells) {
            const td = document.createElement("td");
            td.className = cls;
            td.textContent = text;
            tr.appendChild(td);
        }
        tr.addEventListener("click", function () { selectRow(m.id); });
        tbody.appendChild(tr);
    }
    const keep = state.selected;
    state.selected = null;
    if (keep)
        selectRow(keep);
    else
        selectRow(null);
}

async function poll() {
    clearTimeout(state.timer);
    try {
        const [stats, queue] = await Promise.all([
            api("GET", "/api/v1/stats"),
            api("GET", "/api/v1/queue?state=deferred,hold&limit=" + LIST_LIMIT),
        ]);
        showStats(stats);
        showMessages(queue.messages);
        if ($("notice").className === "error")
            notice("");
    } catch (e) {
        if (e.status === 401)
            notice("Enter the admin token (from admin_token_file).", true);
        else
            notice("Cannot reach ternd: " + e.message, true);
    }
    state.timer = setTimeout(poll, POLL_MS);
}

async function act(what, fn) {
    try {
        const text = await fn();
        notice(text);
    } catch (e) {
        notice(what + " failed: " + e.message, true);
    }
    await poll();
}

function setup() {
    drawLegend();
    $("token").value = state.token;
    $("token-form").addEventListener("submit", function (ev) {
        ev.preventDefault();
        state.token = $("token").value.trim();
        sessionStorage.setItem("tern-token", state.token);
        notice("");
        poll();
    });
    $("flush").addEventListener("click", function () {
        act("Flush", async function () {
            const r = await api("POST", "/api/v1/flush");
            return "Flush started: " + r.messages + " deferred message(s) " +
                   "will be tried now.";
        });
    });
    for (const op of ["hold", "release"]) {
        $(op).addEventListener("click", function () {
            const id = state.selected;
            if (!id)
                return;
            act(op, async function () {
                const m = await api("POST", "/api/v1/queue/" + id + "/" + op);
                return id + " is now " + m.state + ".";
            });
        });
    }
    $("delete").addEventListener("click", function () {
        const id = state.selected;
        if (!id || !window.confirm("Delete message " + id + "?"))
            return;
        act("Delete", async function () {
            await api("DELETE", "/api/v1/queue/" + id);
            state.selected = null;
            return id + " was deleted.";
        });
    });
    poll();
}

document.addEventListener("DOMContentLoaded", setup);

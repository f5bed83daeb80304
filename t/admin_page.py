# SPDX-License-Identifier: ISC
"""The status page in a real browser: Debian's Chromium, headless, driven
by playwright-core (npm, installed outside the source tree).  The page
is loaded from ternd, given the token, and must show the queue counts
and the deferred messages with their reasons; clicking Flush must send
POST /api/v1/flush with the token and update the page, and Hold on a
selected message must put it on hold."""

import json
import os
import tempfile

import adminlib
import ternlib

F = ternlib.Failures()
CHROMIUM = "/usr/bin/chromium"

SCRIPT = r"""
const [mods, base, token, shot] = process.argv.slice(2);
const { chromium } = require(mods + "/playwright-core");
(async () => {
  const out = {requests: [], console: []};
  const browser = await chromium.launch({
    executablePath: "%(chromium)s",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--no-first-run"],
  });
  try {
    const page = await browser.newPage();
    page.on("console", m => out.console.push(m.text()));
    page.on("request", r => {
      if (r.url().includes("/api/v1/"))
        out.requests.push({method: r.method(), url: r.url(),
                           auth: r.headers()["authorization"] || null});
    });
    page.on("dialog", d => d.accept());
    await page.goto(base + "/");
    out.title = await page.title();
    out.noticeBefore = await page.textContent("#notice");
    out.beforeToken = out.requests.length;
    await page.fill("#token", token);
    await page.click("#token-save");
    await page.waitForFunction(() =>
      document.querySelector("#q-deferred").textContent !== "–" &&
      document.querySelectorAll("#rows tr").length > 0, null,
      {timeout: 20000});
    out.deferred = await page.textContent("#q-deferred");
    out.rows = await page.$$eval("#rows tr", trs => trs.map(tr =>
      ({id: tr.dataset.id,
        state: tr.querySelector(".state").textContent,
        reason: tr.querySelector(".reason").textContent})));
    out.paths = await page.$$eval("#chart path", ps =>
      ps.map(p => p.getAttribute("data-series")));
    const before = out.requests.length;
    await page.click("#flush");
    await page.waitForFunction(() =>
      document.querySelector("#notice").textContent.startsWith("Flush"),
      null, {timeout: 20000});
    out.flushNotice = await page.textContent("#notice");
    out.flushRequests = out.requests.slice(before).filter(r =>
      r.method === "POST" && r.url.endsWith("/api/v1/flush"));
    const first = out.rows[0].id;
    await page.click(`#rows tr[data-id="${first}"]`);
    out.holdEnabled = await page.isEnabled("#hold");
    await page.click("#hold");
    await page.waitForFunction(id => {
      const tr = document.querySelector(`#rows tr[data-id="${id}"]`);
      return tr && tr.querySelector(".state").textContent === "hold";
    }, first, {timeout: 20000});
    out.held = first;
    out.holdNotice = await page.textContent("#notice");
    await page.screenshot({path: shot, fullPage: true});
  } catch (e) {
    out.error = String(e && e.stack || e);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
})();
"""


def main():
    if not os.access(CHROMIUM, os.X_OK):
        F.check(False, "Debian's chromium is installed at " + CHROMIUM)
        F.exit()
    mods = adminlib.npm_install("playwright-core")
    if not F.check(mods is not None, "playwright-core is installed"):
        F.exit()
    work = tempfile.mkdtemp(prefix="tern-page-")
    script = os.path.join(work, "page.js")
    with open(script, "w") as f:
        f.write(SCRIPT % {"chromium": CHROMIUM})
    shot = os.path.join(work, "status.png")
    with ternlib.Ternd(adminlib.params()) as t:
        api = adminlib.Api(t)
        qids = [adminlib.send(t, "s%d@sender.test" % i, ["r@remote.test"])
                for i in range(3)]
        for q in qids:
            adminlib.wait_state(api, q, "deferred")
        status, out = ternlib.run(
            ["node", script, mods, "http://127.0.0.1:%d" % t.admin_port,
             api.token, shot], timeout=180)
        try:
            res = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            res = {"error": out}
        F.check("error" not in res, "the browser run finished",
                res.get("error"))
        F.check(res.get("title") == "tern status", "the page loads",
                res.get("title"))
        F.check(res.get("deferred") == "3", "it shows 3 deferred messages",
                res.get("deferred"))
        rows = res.get("rows") or []
        F.check(sorted(r["id"] for r in rows) == sorted(qids) and
                all("Host or domain name not found" in r["reason"]
                    for r in rows), "with their reasons", rows)
        F.check("deferred" in (res.get("paths") or []),
                "the chart draws the deferred queue", res.get("paths"))
        fl = res.get("flushRequests") or []
        F.check(len(fl) == 1 and fl[0]["auth"] == "Bearer " + api.token,
                "Flush sends POST /api/v1/flush with the token", fl)
        F.check((res.get("flushNotice") or "").startswith("Flush started: 3"),
                "and the page says what it did", res.get("flushNotice"))
        F.check(t.wait_log(r"flush, token=admin, client=127\.0\.0\.1"),
                "ternd logs the flush")
        F.check(all(r["auth"] == "Bearer " + api.token
                    for r in res.get("requests", [])[res.get("beforeToken",
                                                             0):]),
                "every API call after the token is entered carries it")
        F.check(not any("token" in r["url"] for r in res.get("requests", [])),
                "the token never goes into a URL")
        held = res.get("held")
        F.check(held and api.get("/api/v1/queue/" + held).json["state"] ==
                "hold", "Hold on the selected message holds it", res)
        F.check(os.path.exists(shot), "a screenshot was taken: " + shot)
    F.exit()


if __name__ == "__main__":
    main()

"""`ferry ui`'s workflow graphs (src/ui/graph.c: laid out by Graphviz's
dot in the server, drawn by the page) and the jobs table's workflow and
time filters: the API with http.client, the page in a real headless
Chromium (tests/test_ui.py's browser). Each browser test saves a
screenshot under BUILD_DIR/test-output/test_ui/."""
import json
import os
import time
import urllib.parse

from conftest import poll
from test_ui import SHOTS, UI, browser, click, page, text, ui, wait  # noqa: F401 (fixtures)
from test_workflow import submit


def diamond(ferry, fail_b=False, hold=False):
    """a -> b, c -> d, and e after d; b in group "middle" with c."""
    gate = ferry.path("gate")
    jobs = {"a": {"argv": ["true"]},
            "b": {"argv": ["sh", "-c", "exit 3" if fail_b else "true"]},
            "c": {"argv": ["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done"]},
            "d": {"argv": ["true"]}, "e": {"argv": ["true"]}}
    if hold:
        jobs["a"]["hold"] = True
    return submit(ferry, {"name": "diamond", "jobs": jobs,
                          "dependencies": [["a", "b"], ["a", "c"], ["b", "d"], ["c", "d"],
                                           ["d", "e"]],
                          "groups": [{"name": "middle", "elements": ["b", "c"]}]})


def ids_by_name(ferry, w):
    return {j["name"]: j["id"] for j in ferry.json("workflow", "jobs", w)}


def layered(ferry, subjects, steps, hold=True):
    """subjects chains of steps jobs, each chain a group, then one last job after all."""
    jobs, deps, groups = {"first": {"argv": ["true"], "hold": hold}}, [], []
    for s in range(subjects):
        chain = [f"s{s}-{k}" for k in range(steps)]
        for k, name in enumerate(chain):
            jobs[name] = {"argv": ["true"]}
            deps.append(["first" if k == 0 else chain[k - 1], name])
        groups.append({"name": f"subject {s}", "elements": chain})
    jobs["last"] = {"argv": ["true"]}
    deps += [[f"s{s}-{steps - 1}", "last"] for s in range(subjects)]
    return submit(ferry, {"name": "layers", "jobs": jobs, "dependencies": deps,
                          "groups": groups})


# ------------------------------------------------------------ the API

def test_graph_of_a_diamond(ui, ferry):
    ui.login()
    w = diamond(ferry, hold=True)
    ids = ids_by_name(ferry, w)
    ui.wait_connected()
    assert [x["id"] for x in ui.api("/api/workflows", resource="local")["workflows"]] == [w]
    g = ui.api("/api/graph", resource="local", workflow=w)
    assert g["jobs"] == 5 and g["unmatched"] == 0
    nodes = {n["id"]: n for n in g["nodes"]}
    assert set(nodes) == {f"j{i}" for i in ids.values()}
    assert nodes[f"j{ids['a']}"]["status"] == "user_on_hold"
    assert {(e["from"], e["to"]) for e in g["edges"]} == {
        (f"j{ids[x]}", f"j{ids[y]}") for x, y in ("ab", "ac", "bd", "cd", "de")}
    assert all(e["d"].startswith("M") for e in g["edges"])
    # dot lays it out top-down: a above b and c, above d, above e
    y = {k: nodes[f"j{i}"]["y"] for k, i in ids.items()}
    assert y["a"] < y["b"] == y["c"] < y["d"] < y["e"], y
    # the group is a cluster round b and c
    assert g["groups"] == [{"name": "middle", "parent": -1, "jobs": 2, "collapsed": False}]
    (cl,) = g["clusters"]
    assert cl["group"] == 0
    for k in "bc":  # boxes by their centres
        n = nodes[f"j{ids[k]}"]
        assert cl["x"] - cl["w"] / 2 <= n["x"] - n["w"] / 2
        assert n["x"] + n["w"] / 2 <= cl["x"] + cl["w"] / 2
    for k in "ade":
        n = nodes[f"j{ids[k]}"]
        assert not cl["y"] - cl["h"] / 2 <= n["y"] <= cl["y"] + cl["h"] / 2
    # collapsed: one node for both, edges to and from it once
    g = ui.api("/api/graph", resource="local", workflow=w, collapsed="0")
    assert {n["id"] for n in g["nodes"]} == {f"j{ids[k]}" for k in "ade"}
    assert g["groups"][0]["collapsed"] is True and "node" in g["groups"][0]
    assert sorted(g["groups"][0]["members"]) == sorted([ids["b"], ids["c"]])
    assert {(e["from"], e["to"]) for e in g["edges"]} == {
        (f"j{ids['a']}", "g0"), ("g0", f"j{ids['d']}"), (f"j{ids['d']}", f"j{ids['e']}")}
    assert g["clusters"] == []
    states = ui.api("/api/workflow-jobs", resource="local", workflow=w)["jobs"]
    assert sorted(s[0] for s in states) == sorted(ids.values())
    for bad in ({"workflow": "x"}, {"workflow": "0"}, {"workflow": w, "collapsed": "1"},
                {"workflow": w, "collapsed": "0,"}, {"workflow": w, "collapsed": "-1"}):
        r, _ = ui.request("GET", "/api/graph?" + urllib.parse.urlencode(
            {"resource": "local", **bad}))
        assert r.status == 400, bad
    r, data = ui.request("GET", f"/api/graph?resource=local&workflow={w + 1}")
    assert r.status == 404, data
    ferry.run("kill", "--workflow", w)


def test_nested_groups_and_elements_that_name_no_job(ui, ferry):
    """Groups name jobs by id (the engine records them so), a job named
    otherwise than its local id too; a group inside a collapsed one is
    hidden with it; an element whose job was disposed of is counted in
    unmatched."""
    ui.login()
    w = submit(ferry, {
        "jobs": {"a": {"argv": ["true"], "hold": True}, "b": {"argv": ["true"]},
                 "c": {"argv": ["true"]}, "x": {"argv": ["true"], "name": "other"}},
        "dependencies": [["a", "b"], ["a", "c"], ["a", "x"]],
        "groups": [{"name": "outer", "elements": ["b", "x", {"name": "inner",
                                                              "elements": ["c"]}]}]})
    ids = ids_by_name(ferry, w)
    ui.wait_connected()
    g = ui.api("/api/graph", resource="local", workflow=w)
    assert g["unmatched"] == 0  # "x" too, whose job is named "other"
    assert [(x["name"], x["parent"], x["jobs"]) for x in g["groups"]] == \
        [("outer", -1, 2 + 1), ("inner", 0, 1)]
    assert sorted(c["group"] for c in g["clusters"]) == [0, 1]
    g = ui.api("/api/graph", resource="local", workflow=w, collapsed="1")
    assert {n["id"] for n in g["nodes"]} == {f"j{ids[k]}" for k in ("a", "b", "other")}
    assert g["groups"][1]["members"] == [ids["c"]] and "node" in g["groups"][1]
    assert [c["group"] for c in g["clusters"]] == [0]
    g = ui.api("/api/graph", resource="local", workflow=w, collapsed="0")
    assert sorted(g["groups"][0]["members"]) == sorted([ids["b"], ids["c"], ids["other"]])
    assert "node" not in g["groups"][1] and "members" not in g["groups"][1]
    assert {n["id"] for n in g["nodes"]} == {f"j{ids['a']}"}
    assert {(e["from"], e["to"]) for e in g["edges"]} == {(f"j{ids['a']}", "g0")}
    # the layout's direction, as asked
    assert ui.api("/api/graph", resource="local", workflow=w, rankdir="LR")["rankdir"] == "LR"
    r, _ = ui.request("GET", f"/api/graph?resource=local&workflow={w}&rankdir=BT")
    assert r.status == 400
    ferry.run("kill", ids["other"])
    ferry.wait_ended(ids["other"])
    ferry.run("dispose", ids["other"])
    g = ui.api("/api/graph", resource="local", workflow=w)
    assert g["unmatched"] == 1 and g["groups"][0]["jobs"] == 2, g["groups"]
    ferry.run("kill", "--workflow", w)


def test_graph_endpoints_need_the_session(ui, ferry):
    w = diamond(ferry, hold=True)
    for path in (f"/api/graph?resource=local&workflow={w}", "/api/workflows?resource=local",
                 f"/api/workflow-jobs?resource=local&workflow={w}"):
        r, _ = ui.request("GET", path, cookie=False)
        assert r.status == 403, path
        ui.login() if not ui.cookie else None
        r, _ = ui.request("GET", path, host="evil.example")
        assert r.status == 403, path
    ferry.run("kill", "--workflow", w)


def test_a_graph_too_big_to_lay_out_names_the_limit(ui, ferry):
    """2,001 jobs in no group: more nodes than one layout takes."""
    ui.login()
    jobs = {f"j{i}": {"argv": ["true"], "hold": True} for i in range(2001)}
    w = submit(ferry, {"jobs": jobs})
    ui.wait_connected()
    r, data = ui.request("GET", f"/api/graph?resource=local&workflow={w}")
    assert r.status == 413, data
    assert json.loads(data)["error"] == ("the graph would have 2001 nodes, more than the "
                                         "2000 the view lays out: collapse groups")
    ferry.run("kill", "--workflow", w, timeout=120)


def test_jobs_filtered_by_workflow_and_time(ui, ferry):
    ui.login()
    early = ferry.submit("true", opts=("--hold", "--name", "early"))
    time.sleep(1.1)
    mid = time.time()
    time.sleep(0.1)
    w = diamond(ferry, hold=True)
    wf_ids = sorted(ids_by_name(ferry, w).values())
    # newer jobs than the workflow's, more than the poller's newest 2 x 50 of the state
    with open(ferry.path("bulk"), "w") as fh:
        fh.write("true\n" * 150)
    ferry.run("submit", "--hold", "--bulk", ferry.path("bulk"), timeout=120)
    ui.wait_connected()
    poll(lambda: ui.api("/api/resources")[0]["total"] == 156, 10, 0.1, "the count")

    def ids(**q):
        return [j["id"] for j in ui.api("/api/jobs", resource="local", limit=500, **q)["jobs"]]
    assert ids(workflow=w) == wf_ids
    # the newest page of a workflow whose jobs are older than the newest jobs
    assert ids(workflow=w, **{"from": "end"}) == wf_ids
    page = ui.api("/api/jobs", resource="local", workflow=w, limit=2, **{"from": "end"})
    assert [j["id"] for j in page["jobs"]] == wf_ids[-2:]
    assert ids(since=mid)[:5] == wf_ids and len(ids(since=mid)) == 155
    assert ids(until=mid) == [early]
    assert ids(since=mid, until=mid + 3600, workflow=w, state="system_on_hold") == \
        sorted(wf_ids)[1:]
    assert ids(ended_since=mid) == []
    ferry.run("kill", early)
    ferry.wait_ended(early)
    ended = ferry.info(early)["ended_at"]
    assert ids(ended_since=mid) == [early]
    assert ids(ended_since=ended + 1) == [] and ids(ended_until=ended + 1) == [early]
    assert ids(ended_until=ended) == []
    assert ids(until=0) == [] and ids(ended_since=0) == [early]  # 0 is a time too
    for bad in ({"workflow": "0"}, {"workflow": "x"}, {"since": "-1"}, {"until": "soon"},
                {"ended_since": "nan"}, {"ended_until": ""}, {"from": "end", "until": mid}):
        r, data = ui.request("GET", "/api/jobs?" + urllib.parse.urlencode(
            {"resource": "local", **bad}))
        assert r.status == 400, (bad, data)
    ferry.run("kill", "--workflow", w)


# ------------------------------------------------------------ the page, in a browser

def shot(d, name, css="#workflows"):
    """A screenshot of the page scrolled to what css selects."""
    d.execute_script("document.querySelector(arguments[0]).scrollIntoView()", css)
    os.makedirs(SHOTS, exist_ok=True)
    d.save_screenshot(os.path.join(SHOTS, name + ".png"))


def graph_nodes(d):
    """{job id: [state it shows, fill colour, state of its row's colour]} of the graph."""
    return d.execute_script("""
        const out = {};
        for (const g of document.querySelectorAll('#graph g.job')) {
          const cell = document.querySelector(`#jobs-table tr[data-id="${g.dataset.id}"] td.state`);
          out[g.dataset.id] = [g.dataset.status || null,
            getComputedStyle(g.querySelector('rect.box')).fill,
            cell ? cell.textContent : null, cell ? getComputedStyle(cell).backgroundColor : null,
            g.classList.contains('aborted')];
        }
        return out;""")


def svg_click(d, css):
    """A click on an SVG element as the browser dispatches one (selenium's may miss text)."""
    wait(d, lambda d: d.execute_script(
        "const e = document.querySelector(arguments[0]); if (!e) return false;"
        "e.dispatchEvent(new MouseEvent('click', {bubbles: true})); return true;", css),
        10, css)


def test_browser_graph_shows_each_job_in_its_states_colour(ui, ferry, page):
    """The acceptance of issue 17: as many nodes as jobs, with their states'
    colours (those of the jobs table); a failed job's descendants aborted;
    a state change repainted live; a group collapsed and expanded."""
    w = diamond(ferry, fail_b=True)
    ids = ids_by_name(ferry, w)
    page.get(ui.url)
    wait(page, lambda d: d.find_elements("css selector", "#live.on"), what="the event stream")
    page.execute_script("window.notReloaded = true")

    def settled(d):
        n = graph_nodes(d)
        want = {"a": "done", "b": "failed", "c": "running", "d": "failed", "e": "failed"}
        return n if len(n) == 5 and all(n[str(ids[k])][0] == s and n[str(ids[k])][2] == s
                                        for k, s in want.items()) else None
    nodes = wait(page, settled, 20, "the graph with every job in its state")
    assert set(nodes) == {str(i) for i in ids.values()}
    for jid, (state, fill, row_state, row_bg, aborted) in nodes.items():
        assert fill == row_bg, (jid, state, fill, row_bg)  # the table's colour of that state
    fills = {k: nodes[str(i)][1] for k, i in ids.items()}
    assert fills["b"] == fills["d"] == fills["e"] and len({fills["a"], fills["b"],
                                                          fills["c"]}) == 3, fills
    assert [nodes[str(ids[k])][4] for k in "abcde"] == [False, False, False, True, True]
    assert ferry.info(ids["d"])["exit_status"] == "aborted"
    shot(page, "test_browser_graph_diamond")
    # c ends: repainted without a reload or a new layout
    drawn = page.execute_script("return document.querySelector('#graph g.job')")
    open(ferry.path("gate"), "w").close()
    wait(page, lambda d: graph_nodes(d)[str(ids["c"])][0] == "done", 10, "c done, live")
    assert graph_nodes(page)[str(ids["c"])][1] == fills["a"]
    assert page.execute_script("return arguments[0].isConnected", drawn)
    # the group collapsed: one node counting its jobs per state
    svg_click(page, '#graph g.cluster[data-group="0"] text.gname')
    wait(page, lambda d: len(graph_nodes(d)) == 3, 10, "b and c in one node")
    counts = page.execute_script(
        "return JSON.parse(document.querySelector('#graph g.group').dataset.counts)")
    assert counts == {"done": 1, "failed": 1}
    segs = page.execute_script(
        "return [...document.querySelectorAll('#graph g.group rect.seg')].map("
        "(r) => [r.dataset.state, getComputedStyle(r).fill])")
    assert sorted(segs) == [["done", fills["a"]], ["failed", fills["b"]]]
    shot(page, "test_browser_graph_diamond_collapsed")
    svg_click(page, "#graph g.group")
    wait(page, lambda d: len(graph_nodes(d)) == 5, 10, "the group expanded")
    # disposed of: the graph of the newest other workflow instead
    w2 = submit(ferry, {"jobs": {"solo": {"argv": ["true"], "hold": True}}})
    (solo,) = ids_by_name(ferry, w2).values()
    ferry.run("workflow", "dispose", w)
    wait(page, lambda d: list(graph_nodes(d)) == [str(solo)], 15,
         "the other workflow's graph")
    ferry.run("workflow", "dispose", w2)
    wait(page, lambda d: not graph_nodes(d) and text(d, "#w-count") == "none yet", 15,
         "no workflow left")
    assert page.execute_script("return window.notReloaded") is True


def test_browser_graph_of_1000_jobs(ui, ferry, page, capsys):
    """100 chains of 10 in a group each, between a first and a last job:
    the groups collapsed by default (readable), all 1,002 jobs when
    expanded; both drawn in a bounded time, which the test prints."""
    w = layered(ferry, 100, 10)
    page.get(ui.url)
    drawn = wait(page, lambda d: d.execute_script(
        "const g = document.querySelector('#graph');"
        "return g.dataset.workflow == arguments[0] && g.dataset.ms ? "
        "[document.querySelectorAll('#graph g.job').length,"
        " document.querySelectorAll('#graph g.group').length, Number(g.dataset.ms)] : null",
        w), 60, "the collapsed graph")
    assert drawn[:2] == [2, 100], drawn
    collapsed_ms = drawn[2]
    shot(page, "test_browser_graph_of_1000_jobs_collapsed")
    page.execute_script("document.querySelector('#graph').dataset.ms = ''")
    t = time.monotonic()
    page.find_element("css selector", "#w-expand").click()
    drawn = wait(page, lambda d: d.execute_script(
        "const g = document.querySelector('#graph'); return g.dataset.ms ? "
        "[document.querySelectorAll('#graph g.job').length, Number(g.dataset.ms)] : null"),
        60, "the expanded graph")
    wall = time.monotonic() - t
    assert drawn[0] == 1002
    states = wait(page, lambda d: d.execute_script(
        "const s = [...document.querySelectorAll('#graph g.job')].map((g) => g.dataset.status);"
        "return s.every((x) => x) ? s : null"), 10, "every node's state")
    assert sorted(set(states)) == ["system_on_hold", "user_on_hold"]
    # zoomed in: a part of the drawing shown, big enough to read
    page.find_element("css selector", "#w-in").click()
    page.find_element("css selector", "#w-in").click()
    shot(page, "test_browser_graph_of_1000_jobs_expanded")
    with capsys.disabled():
        print(f"\n1,002-job workflow graph: collapsed {collapsed_ms} ms, expanded "
              f"{drawn[1]} ms (request, layout and drawing), {wall:.2f} s from the click")
    assert drawn[1] < 10000
    ferry.run("kill", "--workflow", w, timeout=120)


def set_time(d, css, t):
    """A datetime-local input set to t (seconds since the epoch) in the browser's time zone."""
    d.execute_script("""
        const d = new Date(arguments[1] * 1000);
        d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
        document.querySelector(arguments[0]).value = d.toISOString().slice(0, 19);""", css, t)


def table_ids(d):
    return d.execute_script(
        "return [...document.querySelectorAll('#jobs-table tbody tr')].map((r) => +r.dataset.id)")


def test_browser_filters_jobs_by_workflow_and_time(ui, ferry, page):
    early = ferry.submit("true", opts=("--hold", "--name", "early"))
    time.sleep(1.5)
    mid = int(time.time()) + 1  # whole seconds: what the input takes
    time.sleep(mid - time.time() + 0.5)
    w = diamond(ferry, hold=True)
    wf_ids = sorted(ids_by_name(ferry, w).values())
    late = ferry.submit("true", opts=("--hold", "--name", "late"))
    page.get(ui.url)
    wait(page, lambda d: sorted(table_ids(d)) == sorted([early, late] + wf_ids), 10, "all jobs")
    page.find_element("css selector", "#f-workflow").send_keys(str(w))
    page.find_element("css selector", "#filters button[type=submit]").click()
    wait(page, lambda d: sorted(table_ids(d)) == wf_ids, 10, "the workflow's jobs")
    page.find_element("css selector", "#f-workflow").clear()
    set_time(page, "#f-since", mid)
    page.find_element("css selector", "#filters button[type=submit]").click()
    wait(page, lambda d: sorted(table_ids(d)) == sorted(wf_ids + [late]), 10, "since")
    set_time(page, "#f-since", 0)
    page.execute_script("document.querySelector('#f-since').value = ''")
    set_time(page, "#f-until", mid)
    page.find_element("css selector", "#filters button[type=submit]").click()
    wait(page, lambda d: table_ids(d) == [early], 10, "until")
    shot(page, "test_browser_filters_jobs_by_until", "#jobs")
    page.execute_script("document.querySelector('#f-until').value = ''")
    ferry.run("kill", early)
    ferry.wait_ended(early)
    set_time(page, "#f-ended-since", mid)
    page.find_element("css selector", "#filters button[type=submit]").click()
    wait(page, lambda d: table_ids(d) == [early], 10, "ended since")
    ferry.run("kill", "--workflow", w)


def test_browser_stops_and_restarts_a_workflow(ui, ferry, page):
    """The workflow's stop (after a confirmation: it kills) and restart
    buttons: the stop kills the running job and keeps the rest from
    starting, a dismissed confirmation stops nothing, and the restart runs
    the killed and aborted jobs again while the done one is kept."""
    from selenium.webdriver.support import expected_conditions as EC
    w = diamond(ferry)
    ids = ids_by_name(ferry, w)
    ferry.wait_state(ids["c"], "running")
    ferry.wait_ended(ids["b"])
    page.get(ui.url)
    wait(page, lambda d: len(graph_nodes(d)) == 5, 20, "the graph")
    click(page, "#w-stop", "the stop button")
    wait(page, EC.alert_is_present(), 5, "the confirmation").dismiss()
    time.sleep(0.5)
    assert ferry.state(ids["c"]) == "running"
    click(page, "#w-stop", "the stop button")
    alert = wait(page, EC.alert_is_present(), 5, "the confirmation")
    assert f"Stop workflow {w} of local" in alert.text
    alert.accept()
    assert ferry.wait_ended(ids["c"])["exit_status"] == "killed_by_user"
    assert ferry.json("workflow", "status", w)["status"] == "stopped"
    wait(page, lambda d: graph_nodes(d)[str(ids["c"])][0] == "failed", 10, "c killed, shown")
    shot(page, "test_browser_workflow_stopped")
    open(ferry.path("gate"), "w").close()
    click(page, "#w-restart", "the restart button")
    wait(page, lambda d: "restarted: 3 jobs to run again" in text(d, "#notice"), 10,
         "the restart's notice")
    ferry.run("workflow", "wait", w, timeout=60)
    st = ferry.json("workflow", "status", w)
    assert st["status"] == "done" and st["counts"] == {"done": 5}, st
    wait(page, lambda d: all(v[0] == "done" for v in graph_nodes(d).values()), 10,
         "every job done, shown")
    # a POST with the page's session but without its CSRF header is refused
    ui.cookie = "; ".join(f"{c['name']}={c['value']}" for c in page.get_cookies())
    r, data = ui.request("POST", "/api/workflow-action",
                         body=json.dumps({"resource": "local", "workflow": w, "action": "stop"}))
    assert r.status == 403 and b"X-Ferry-CSRF" in data, data

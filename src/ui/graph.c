/*
 * graph.c - the workflows of `ferry ui`'s page: the list of a resource's
 * workflows, the graph of one laid out by Graphviz's dot (libgvc, in a
 * child forked for it: no program is run), and its jobs' states for the
 * page to recolour the graph between layouts (docs/architecture.md,
 * "ferry ui").
 *
 * A workflow's jobs come from one listing (ferry_list_jobs() with its
 * workflow), each with its dependencies; its groups from its status, by
 * job id (a workflow an older engine recorded has local ids there,
 * matched to the jobs by name: a job without a name is named by its local
 * id). A collapsed group
 * is one node; expanded groups are dot clusters. The page draws the
 * answer: positions, edges as SVG paths, clusters, never text from jobs
 * as markup.
 *
 * Each layout runs in a child process forked for it (layout()), which
 * writes the answer to a pipe and exits: Graphviz keeps global state (it
 * is not thread-safe), the dot of Debian 12 (2.42) leaks memory with each
 * layout of clusters (about 1 MiB for 100 groups), and a layout has no
 * way to be stopped but its process. The server then holds none of it,
 * and a layout that takes over LAYOUT_TIMEOUT_S is killed. One runs at a
 * time (graph_mu: each takes a core); the size laid out is bounded
 * (GRAPH_NODES_MAX, GRAPH_EDGES_MAX) so that one takes about a second at
 * most. Other requests (a thread each) do not wait for it.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <graphviz/gvc.h>

#include "jbytes.h"
#include "ui.h"
#include "util.h"

#define GRAPH_JOBS_MAX	    20000 /* jobs of a workflow the view takes */
#define GRAPH_NODES_MAX	    2000  /* nodes one layout takes (dot: about a second) */
#define GRAPH_EDGES_MAX	    20000 /* edges one layout takes */
#define GRAPH_COLLAPSE_OVER 200	  /* over this many jobs, groups start collapsed */
#define GROUPS_MAX	    10000 /* groups of a workflow the view takes */
#define GROUP_DEPTH	    64
#define WORKFLOWS_MAX	    1000 /* workflows one /api/workflows answer lists, the newest */
#define LAYOUT_TIMEOUT_S    20.0 /* a layout process that takes longer is killed */
#define LAYOUT_OUT_MAX	    (64 * 1024 * 1024) /* the most a layout's answer may be */

static pthread_mutex_t graph_mu = PTHREAD_MUTEX_INITIALIZER; /* one layout at a time */
/* The layout process's own (set and used there only) */
static GVC_t *gvc;
static char gv_err[256]; /* Graphviz's last message */

struct gjob {
	ferry_job_id id;
	char *name;
	enum ferry_job_status status;
	enum ferry_exit_status exit_status;
	int64_t *deps; /* 0-terminated */
	int group;     /* the innermost group it is an element of; -1: none */
	int unit;      /* the collapsed group it is drawn in; -1: its own node */
	Agnode_t *node;
};

struct ggroup {
	const char *name; /* borrowed from the groups' JSON; NULL: none */
	int parent;	  /* -1: a top-level group */
	size_t jobs;	  /* its jobs, those of the groups in it included */
	int collapsed;
	int hidden; /* inside a collapsed group */
	Agraph_t *cluster;
	Agnode_t *node;
};

struct wgraph {
	ferry_workflow_id id;
	struct gjob *jobs; /* by id (the listing's order) */
	size_t n, cap;
	int too_many;
	struct ggroup *groups; /* preorder: a parent before its elements */
	size_t ngroups;
	size_t *by_name; /* job indexes sorted by name */
	size_t unmatched;
	json_t *gjson;
};

static void wgraph_free(struct wgraph *w)
{
	for (size_t i = 0; i < w->n; i++) {
		free(w->jobs[i].name);
		free(w->jobs[i].deps);
	}
	free(w->jobs);
	free(w->groups);
	free(w->by_name);
	json_decref(w->gjson);
}

/* ---- the workflow's jobs ---- */

static int take_job(void *data, const struct ferry_job_info *j)
{
	struct wgraph *w = data;
	struct gjob *g;
	size_t nd = 0;

	if (w->n == GRAPH_JOBS_MAX) {
		w->too_many = 1;
		return 1;
	}
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 256;
		struct gjob *p = realloc(w->jobs, cap * sizeof(*p));

		if (!p)
			return -FERRY_ENOMEM;
		w->jobs = p;
		w->cap = cap;
	}
	while (j->dependencies[nd])
		nd++;
	g = &w->jobs[w->n];
	memset(g, 0, sizeof(*g));
	g->id = j->id;
	g->status = j->status;
	g->exit_status = j->exit_status;
	g->group = g->unit = -1;
	g->name = j->name ? strdup(j->name) : NULL;
	g->deps = malloc((nd + 1) * sizeof(*g->deps));
	if ((j->name && !g->name) || !g->deps) {
		free(g->name);
		free(g->deps);
		return -FERRY_ENOMEM;
	}
	memcpy(g->deps, j->dependencies, (nd + 1) * sizeof(*g->deps));
	w->n++;
	return 0;
}

/* The jobs of workflow w->id: 0, or -1 after a reply. */
static int list_workflow(struct ui_res *res, ferry_conn *c, struct wgraph *w, struct ui_reply *r)
{
	struct ferry_list_opts o;
	char msg[160];
	int rc;

	ferry_list_opts_init(&o);
	o.workflow = w->id;
	pthread_mutex_lock(&res->call_mu);
	rc = ferry_list_jobs(c, &o, take_job, w);
	if (rc < 0)
		ferry__ui_ferry_error(r, c, rc);
	pthread_mutex_unlock(&res->call_mu);
	if (rc < 0)
		return -1;
	if (w->too_many) {
		snprintf(msg, sizeof(msg),
			 "workflow %lld has more than %d jobs, more than the graph view takes",
			 (long long)w->id, GRAPH_JOBS_MAX);
		ferry__ui_error_reply(r, 413, msg);
		return -1;
	}
	if (w->n == 0) {
		ferry__ui_error_reply(r, 404, "no such workflow, or it has no jobs left");
		return -1;
	}
	return 0;
}

static long find_id(const struct wgraph *w, ferry_job_id id)
{
	size_t lo = 0, hi = w->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (w->jobs[mid].id == id)
			return (long)mid;
		if (w->jobs[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* ---- its groups ---- */

static const char *job_name(const struct gjob *j)
{
	return j->name ? j->name : "";
}

static int cmp_name(const void *a, const void *b, void *arg)
{
	const struct wgraph *w = arg;

	return strcmp(job_name(&w->jobs[*(const size_t *)a]),
		      job_name(&w->jobs[*(const size_t *)b]));
}

/* The job named s, when exactly one is: its index, or -1. */
static long find_name(const struct wgraph *w, const char *s)
{
	size_t lo = 0, hi = w->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(s, job_name(&w->jobs[w->by_name[mid]]));

		if (c > 0) {
			lo = mid + 1;
		} else if (c < 0) {
			hi = mid;
		} else {
			int twin =
			    (mid > 0 && !strcmp(s, job_name(&w->jobs[w->by_name[mid - 1]]))) ||
			    (mid + 1 < w->n && !strcmp(s, job_name(&w->jobs[w->by_name[mid + 1]])));
			return twin ? -1 : (long)w->by_name[mid];
		}
	}
	return -1;
}

static int add_group(struct wgraph *w, const json_t *g, int parent, int depth)
{
	const json_t *els = json_object_get(g, "elements"), *e;
	int me = (int)w->ngroups;
	size_t i;

	if (!json_is_object(g) || w->ngroups == GROUPS_MAX || depth > GROUP_DEPTH)
		return -1;
	if ((w->ngroups & (w->ngroups - 1)) == 0) { /* 0, 1, 2, 4...: room for twice as many */
		struct ggroup *p = realloc(w->groups, 2 * (w->ngroups + 1) * sizeof(*p));

		if (!p)
			return -1;
		w->groups = p;
	}
	w->groups[me] = (struct ggroup){.name = json_string_value(json_object_get(g, "name")),
					.parent = parent};
	w->ngroups++;
	json_array_foreach(els, i, e)
	{
		long k;

		if (json_is_object(e)) {
			if (add_group(w, e, me, depth + 1) < 0)
				return -1;
			continue;
		}
		/* a job id; a local id in a workflow an older engine recorded */
		k = json_is_integer(e)	? find_id(w, json_integer_value(e))
		    : json_is_string(e) ? find_name(w, json_string_value(e))
					: -1;
		if (k < 0 || w->jobs[k].group >= 0)
			w->unmatched++; /* disposed of, or twice; a name matching none */
		else
			w->jobs[k].group = me;
	}
	return 0;
}

/* The groups of the workflow's status, matched to its jobs: 0, or -1 after a reply. */
static int read_groups(struct ui_res *res, ferry_conn *c, struct wgraph *w, struct ui_reply *r)
{
	struct ferry_workflow_info *info = NULL;
	const json_t *g;
	size_t i;
	int rc;

	pthread_mutex_lock(&res->call_mu);
	rc = ferry_workflow_status(c, w->id, &info);
	if (rc < 0)
		ferry__ui_ferry_error(r, c, rc);
	pthread_mutex_unlock(&res->call_mu);
	if (rc < 0)
		return -1;
	w->gjson = info->groups ? json_loads(info->groups, 0, NULL) : NULL;
	ferry_workflow_info_free(info);
	w->by_name = malloc((w->n ? w->n : 1) * sizeof(*w->by_name));
	if (!w->by_name) {
		ferry__ui_error_reply(r, 500, "out of memory");
		return -1;
	}
	for (i = 0; i < w->n; i++)
		w->by_name[i] = i;
	qsort_r(w->by_name, w->n, sizeof(*w->by_name), cmp_name, w);
	json_array_foreach(w->gjson, i, g)
	{
		if (json_is_object(g) && add_group(w, g, -1, 1) < 0) {
			char msg[160];

			snprintf(msg, sizeof(msg),
				 "the workflow has more than %d groups or groups nested over %d "
				 "levels, more than the graph view takes",
				 GROUPS_MAX, GROUP_DEPTH);
			ferry__ui_error_reply(r, 413, msg);
			return -1;
		}
		if (json_is_string(g) && find_name(w, json_string_value(g)) < 0)
			w->unmatched++;
	}
	return 0;
}

/* ---- what is drawn ---- */

/*
 * "collapsed": the groups drawn as one node, by index ("none": none);
 * absent: the top-level ones when the workflow has over
 * GRAPH_COLLAPSE_OVER jobs. 0, or -1 for a bad list.
 */
static int parse_collapsed(struct wgraph *w, const char *arg)
{
	char *end;

	if (!arg) {
		for (size_t i = 0; w->n > GRAPH_COLLAPSE_OVER && i < w->ngroups; i++)
			w->groups[i].collapsed = w->groups[i].parent < 0;
		return 0;
	}
	if (!strcmp(arg, "none"))
		return 0;
	for (const char *s = arg;; s = end + 1) {
		unsigned long v;

		if (*s < '0' || *s > '9')
			return -1;
		v = strtoul(s, &end, 10);
		if ((*end && *end != ',') || v >= w->ngroups)
			return -1;
		w->groups[v].collapsed = 1;
		if (!*end)
			break;
	}
	return 0;
}

/* Each job's unit (its outermost collapsed group) and the groups' sizes: the nodes to draw. */
static size_t units(struct wgraph *w)
{
	size_t nodes = 0;

	for (size_t i = 0; i < w->ngroups; i++) {
		int p = w->groups[i].parent;

		w->groups[i].hidden = p >= 0 && (w->groups[p].hidden || w->groups[p].collapsed);
	}
	for (size_t i = 0; i < w->n; i++) {
		for (int g = w->jobs[i].group; g >= 0; g = w->groups[g].parent) {
			w->groups[g].jobs++;
			if (w->groups[g].collapsed)
				w->jobs[i].unit = g;
		}
		nodes += w->jobs[i].unit < 0;
	}
	for (size_t i = 0; i < w->ngroups; i++)
		nodes += w->groups[i].collapsed && !w->groups[i].hidden && w->groups[i].jobs;
	return nodes;
}

static int gv_error(char *msg)
{
	snprintf(gv_err, sizeof(gv_err), "%s", msg);
	return 0;
}

/* The cluster (or the root) a node of a group g (-1: none) goes in. */
static Agraph_t *container(Agraph_t *root, const struct wgraph *w, int g)
{
	return g >= 0 && w->groups[g].cluster ? w->groups[g].cluster : root;
}

static Agnode_t *new_node(Agraph_t *root, Agraph_t *in, const char *name)
{
	Agnode_t *n = agnode(root, (char *)name, 1);

	if (n && in != root)
		agsubnode(in, n, 1);
	return n;
}

/* The clusters and nodes of w into root: 0, or -1. */
static int build_nodes(Agraph_t *root, struct wgraph *w)
{
	char name[40];

	for (size_t i = 0; i < w->ngroups; i++) {
		struct ggroup *g = &w->groups[i];

		if (g->hidden || !g->jobs)
			continue;
		snprintf(name, sizeof(name), g->collapsed ? "g%zu" : "cluster_%zu", i);
		if (g->collapsed) {
			g->node = new_node(root, container(root, w, g->parent), name);
			if (!g->node)
				return -1;
			agsafeset(g->node, "width", "2.4", "");
			agsafeset(g->node, "height", "0.6", "");
		} else if (!(g->cluster = agsubg(container(root, w, g->parent), name, 1))) {
			return -1;
		} else {
			agsafeset(g->cluster, "margin", "16", ""); /* room for its name */
		}
	}
	for (size_t i = 0; i < w->n; i++) {
		struct gjob *j = &w->jobs[i];

		if (j->unit >= 0) {
			j->node = w->groups[j->unit].node;
			continue;
		}
		snprintf(name, sizeof(name), "j%lld", (long long)j->id);
		if (!(j->node = new_node(root, container(root, w, j->group), name)))
			return -1;
	}
	return 0;
}

/* The edges between the nodes of w's jobs: how many, or -1 (too many, or out of memory). */
static long build_edges(Agraph_t *root, struct wgraph *w)
{
	long n = 0;

	for (size_t i = 0; i < w->n; i++)
		for (const int64_t *d = w->jobs[i].deps; *d; d++) {
			long k = find_id(w, *d);

			if (k < 0 || w->jobs[k].node == w->jobs[i].node)
				continue; /* disposed of, or inside one collapsed group */
			if (++n > GRAPH_EDGES_MAX ||
			    !agedge(root, w->jobs[k].node, w->jobs[i].node, NULL, 1))
				return -1;
		}
	return n;
}

static Agraph_t *new_graph(void)
{
	Agraph_t *g = agopen("workflow", Agstrictdirected, NULL);

	if (!g)
		return NULL;
	/* fixed sizes: dot measures no text (the page writes it), which keeps it fast */
	agattr(g, AGNODE, "shape", "box");
	agattr(g, AGNODE, "fixedsize", "true");
	agattr(g, AGNODE, "label", "");
	agattr(g, AGNODE, "width", "1.6");
	agattr(g, AGNODE, "height", "0.4");
	agattr(g, AGRAPH, "nodesep", "0.2");
	agattr(g, AGRAPH, "ranksep", "0.45");
	agattr(g, AGRAPH, "rankdir", "TB");
	return g;
}

/* ---- the layout, as the page draws it ---- */

struct frame {
	double x0, top; /* dot's origin is at the bottom left, the page's at the top left */
};

static json_t *box_json(const struct frame *f, double cx, double cy, double w, double h)
{
	return json_pack("{s:I,s:I,s:I,s:I}", "x", (json_int_t)lround(cx - f->x0), "y",
			 (json_int_t)lround(f->top - cy), "w", (json_int_t)lround(w), "h",
			 (json_int_t)lround(h));
}

/* An edge's first spline as an SVG path, to its arrow's point: malloc'd, or NULL. */
static char *edge_path(const struct frame *f, Agedge_t *e)
{
	const splines *s = ED_spl(e);
	const bezier *b = s && s->size ? &s->list[0] : NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *m;

	if (!b || !b->size || !(m = open_memstream(&buf, &len)))
		return NULL;
	for (size_t i = 0; i < (size_t)b->size; i++)
		fprintf(m,
			i == 0	 ? "M%.0f %.0f"
			: i == 1 ? " C%.0f %.0f"
				 : " %.0f %.0f",
			b->list[i].x - f->x0, f->top - b->list[i].y);
	if (b->eflag)
		fprintf(m, " L%.0f %.0f", b->ep.x - f->x0, f->top - b->ep.y);
	if (fclose(m) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static json_t *node_json(const struct frame *f, Agnode_t *n)
{
	return box_json(f, ND_coord(n).x, ND_coord(n).y, ND_width(n) * 72, ND_height(n) * 72);
}

static int add_edges(Agraph_t *g, const struct frame *f, json_t *edges)
{
	for (Agnode_t *n = agfstnode(g); n; n = agnxtnode(g, n))
		for (Agedge_t *e = agfstout(g, n); e; e = agnxtout(g, e)) {
			char *d = edge_path(f, e);
			json_t *o = json_pack("{s:s,s:s,s:s?}", "from", agnameof(agtail(e)), "to",
					      agnameof(aghead(e)), "d", d);

			free(d);
			if (!o || json_array_append_new(edges, o) < 0)
				return -1;
		}
	return 0;
}

/* The clusters of g and those inside them: their group and box. */
static int add_clusters(Agraph_t *g, const struct frame *f, json_t *out)
{
	for (int i = 1; i <= GD_n_cluster(g); i++) {
		Agraph_t *c = GD_clust(g)[i];
		boxf bb = GD_bb(c);
		unsigned long k = strtoul(agnameof(c) + strlen("cluster_"), NULL, 10);
		json_t *o = box_json(f, (bb.LL.x + bb.UR.x) / 2, (bb.LL.y + bb.UR.y) / 2,
				     bb.UR.x - bb.LL.x, bb.UR.y - bb.LL.y);

		if (!o || json_object_set_new(o, "group", json_integer((json_int_t)k)) < 0 ||
		    json_array_append_new(out, o) < 0 || add_clusters(c, f, out) < 0)
			return -1;
	}
	return 0;
}

static json_t *job_node(const struct frame *f, const struct gjob *j)
{
	json_t *o = node_json(f, j->node);
	char id[40];

	snprintf(id, sizeof(id), "j%lld", (long long)j->id);
	if (o &&
	    json_object_update_new(
		o, json_pack("{s:s,s:I,s:o,s:s,s:s}", "id", id, "job", (json_int_t)j->id, "name",
			     ferry__json_bytes(j->name), "status", ferry_status_name(j->status),
			     "exit_status", ferry_exit_status_name(j->exit_status))) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* The groups, each with its place when drawn as one node and the jobs in it. */
static json_t *groups_json(const struct frame *f, const struct wgraph *w)
{
	json_t *all = json_array();

	for (size_t i = 0; all && i < w->ngroups; i++) {
		const struct ggroup *g = &w->groups[i];
		json_t *o =
		    json_pack("{s:o,s:i,s:I,s:b}", "name", ferry__json_bytes(g->name), "parent",
			      g->parent, "jobs", (json_int_t)g->jobs, "collapsed", g->collapsed);

		if (o && g->node && !g->hidden)
			json_object_set_new(o, "node", node_json(f, g->node));
		if (!o || json_array_append_new(all, o) < 0) {
			json_decref(all);
			return NULL;
		}
	}
	return all;
}

/* The nodes of jobs drawn as their own, and the members of each group drawn as one node. */
static int add_nodes(const struct frame *f, const struct wgraph *w, json_t *nodes, json_t *groups)
{
	for (size_t i = 0; i < w->n; i++) {
		const struct gjob *j = &w->jobs[i];
		json_t *g = j->unit >= 0 ? json_array_get(groups, (size_t)j->unit) : NULL;
		json_t *members = g ? json_object_get(g, "members") : NULL;

		if (g && !members && json_object_set_new(g, "members", members = json_array()) < 0)
			return -1;
		if (g ? json_array_append_new(members, json_integer((json_int_t)j->id))
		      : json_array_append_new(nodes, job_node(f, j)))
			return -1;
	}
	return 0;
}

static json_t *layout_json(Agraph_t *g, const struct wgraph *w)
{
	boxf bb = GD_bb(g);
	struct frame f = {.x0 = bb.LL.x, .top = bb.UR.y};
	json_t *o =
	    json_pack("{s:I,s:I,s:I,s:I,s:[],s:[],s:[],s:o}", "workflow", (json_int_t)w->id, "jobs",
		      (json_int_t)w->n, "width", (json_int_t)lround(bb.UR.x - bb.LL.x), "height",
		      (json_int_t)lround(bb.UR.y - bb.LL.y), "nodes", "edges", "clusters", "groups",
		      groups_json(&f, w));

	if (!o || add_nodes(&f, w, json_object_get(o, "nodes"), json_object_get(o, "groups")) ||
	    add_edges(g, &f, json_object_get(o, "edges")) ||
	    add_clusters(g, &f, json_object_get(o, "clusters"))) {
		json_decref(o);
		return NULL;
	}
	json_object_set_new(o, "unmatched", json_integer((json_int_t)w->unmatched));
	return o;
}

/*
 * dot in the direction asked for; NULL: top to bottom, unless that makes
 * the drawing much wider than high (many jobs side by side, as a hundred
 * subjects of a study are), which is laid out left to right instead: a
 * row a subject, read by scrolling down. 0, or -1 (gv_err says why).
 */
static int dot(Agraph_t *g, const char *rankdir, const char **used)
{
	boxf bb;

	*used = rankdir ? rankdir : "TB";
	agset(g, "rankdir", (char *)*used);
	if (gvLayout(gvc, g, "dot") != 0)
		return -1;
	bb = GD_bb(g);
	if (rankdir || bb.UR.x - bb.LL.x < 1500 || bb.UR.x - bb.LL.x < 4 * (bb.UR.y - bb.LL.y))
		return 0;
	gvFreeLayout(gvc, g);
	*used = "LR";
	agset(g, "rankdir", (char *)*used);
	return gvLayout(gvc, g, "dot") != 0 ? -1 : 0;
}

/* Lays w out with dot (in the layout process): the page's graph, or NULL after a reply. */
static json_t *lay_out(struct wgraph *w, const char *rankdir, struct ui_reply *r)
{
	const char *used;
	Agraph_t *g = NULL;
	json_t *o = NULL;
	double t = ferry__mono();
	char msg[400];

	gv_err[0] = 0;
	agseterr(AGERR); /* its warnings (none matter here) are not shown */
	agseterrf(gv_error);
	if (!gvc && !(gvc = gvContext())) {
		ferry__ui_error_reply(r, 500, "cannot start Graphviz");
		return NULL;
	}
	g = new_graph();
	if (!g || build_nodes(g, w) < 0) {
		ferry__ui_error_reply(r, 500, "out of memory");
		goto out;
	}
	if (build_edges(g, w) < 0) {
		snprintf(msg, sizeof(msg),
			 "the graph would have more than %d edges, more than the view lays out: "
			 "collapse groups",
			 GRAPH_EDGES_MAX);
		ferry__ui_error_reply(r, 413, msg);
		goto out;
	}
	if (dot(g, rankdir, &used) < 0) {
		snprintf(msg, sizeof(msg), "Graphviz cannot lay the graph out: %s",
			 gv_err[0] ? gv_err : "no reason given");
		ferry__ui_error_reply(r, 500, msg);
		goto out;
	}
	o = layout_json(g, w);
	gvFreeLayout(gvc, g);
	if (!o)
		ferry__ui_error_reply(r, 500, "out of memory");
	else if (json_object_set_new(o, "layout_s", json_real(ferry__mono() - t)) < 0 ||
		 json_object_set_new(o, "rankdir", json_string(used)) < 0) {
		json_decref(o);
		o = NULL;
		ferry__ui_error_reply(r, 500, "out of memory");
	}
out:
	if (g)
		agclose(g);
	return o;
}

/* ---- the layout process ---- */

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* The child: the answer to fd, as "NNN" (its status) and its body. Never returns. */
static void layout_child(struct wgraph *w, const char *rankdir, int fd)
{
	struct ui_reply r = {0};
	json_t *o = lay_out(w, rankdir, &r);
	char status[4];

	if (o)
		ferry__ui_json_reply(&r, 200, o);
	snprintf(status, sizeof(status), "%03u", r.status % 1000);
	/* _exit: the server's atexit handlers and buffers are not the child's to run */
	_exit(r.body && write_all(fd, status, 3) == 0 && write_all(fd, r.body, r.len) == 0 ? 0 : 1);
}

/* Reads the child's answer until it closes the pipe, or the deadline: 0, or -1 (errno). */
static int read_answer(int fd, double deadline, char **buf, size_t *len)
{
	size_t cap = 0;

	for (;;) {
		double left = deadline - ferry__mono();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t k;
		int n;

		if (left <= 0)
			return errno = ETIMEDOUT, -1;
		n = poll(&p, 1, (int)(left * 1000) + 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			continue; /* the deadline, checked above */
		if (*len == cap) {
			char *q =
			    cap < LAYOUT_OUT_MAX ? realloc(*buf, cap ? 2 * cap : 65536) : NULL;

			if (!q)
				return errno = cap < LAYOUT_OUT_MAX ? ENOMEM : EFBIG, -1;
			*buf = q;
			cap = cap ? 2 * cap : 65536;
		}
		k = read(fd, *buf + *len, cap - *len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		if (k == 0)
			return 0;
		*len += (size_t)k;
	}
}

/* The child's answer, or why it gave none, as the reply. */
static void take_answer(struct ui_reply *r, char *buf, size_t len, int rc, int err, int status)
{
	char msg[200];

	if (rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 && len > 3 && buf[0] >= '1' &&
	    buf[0] <= '5' && buf[1] >= '0' && buf[1] <= '9' && buf[2] >= '0' && buf[2] <= '9') {
		r->status = (unsigned)((buf[0] - '0') * 100 + (buf[1] - '0') * 10 + (buf[2] - '0'));
		memmove(buf, buf + 3, len - 3);
		buf[len - 3] = 0;
		r->body = buf;
		r->len = len - 3;
		r->type = "application/json";
		return;
	}
	free(buf);
	if (rc < 0 && err == ETIMEDOUT)
		snprintf(msg, sizeof(msg), "the layout took over %.0f s: stopped; collapse groups",
			 LAYOUT_TIMEOUT_S);
	else if (WIFSIGNALED(status))
		snprintf(msg, sizeof(msg), "the layout process died of signal %d",
			 WTERMSIG(status));
	else
		snprintf(msg, sizeof(msg), "the layout process failed: %s",
			 rc < 0 ? strerror(err) : "no answer");
	ferry__ui_error_reply(r, rc < 0 && err == ETIMEDOUT ? 503 : 500, msg);
}

/* Lays w out in a child process (under graph_mu): the reply. */
static void layout(struct wgraph *w, const char *rankdir, struct ui_reply *r)
{
	char *buf = NULL;
	size_t len = 0;
	int p[2], rc, err = 0, status = 0;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
		ferry__ui_error_reply(r, 500, "cannot start the layout process");
		return;
	}
	if (pid == 0) {
		close(p[0]);
		layout_child(w, rankdir, p[1]);
	}
	close(p[1]);
	rc = read_answer(p[0], ferry__mono() + LAYOUT_TIMEOUT_S, &buf, &len);
	err = errno;
	close(p[0]);
	if (rc < 0)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	take_answer(r, buf, len, rc, err, status);
}

/* ---- the requests ---- */

static int workflow_arg(ui_arg_fn arg, void *ctx, ferry_workflow_id *id, struct ui_reply *r)
{
	const char *s = arg(ctx, "workflow");
	char *end;
	long long v;

	if (!s || *s < '1' || *s > '9' || (v = strtoll(s, &end, 10)) < 1 || *end) {
		ferry__ui_error_reply(r, 400, "bad workflow id");
		return -1;
	}
	*id = v;
	return 0;
}

/* /api/graph?resource=R&workflow=W[&collapsed=I,J|none][&rankdir=TB|LR]: the graph laid out. */
static int get_graph(struct ui_state *st, ui_arg_fn arg, void *ctx, struct ui_reply *r)
{
	const char *dir = arg(ctx, "rankdir");
	struct wgraph w = {0};
	struct ui_res *res;
	ferry_conn *c = ferry__ui_resource_arg(st, arg(ctx, "resource"), r, &res);
	char msg[200];
	size_t nodes;

	if (!c || workflow_arg(arg, ctx, &w.id, r) < 0 || list_workflow(res, c, &w, r) < 0 ||
	    read_groups(res, c, &w, r) < 0)
		goto out;
	if (parse_collapsed(&w, arg(ctx, "collapsed")) < 0 ||
	    (dir && strcmp(dir, "TB") != 0 && strcmp(dir, "LR") != 0)) {
		ferry__ui_error_reply(
		    r, 400, "bad collapsed (group indexes, or none) or rankdir (TB or LR)");
		goto out;
	}
	nodes = units(&w);
	if (nodes > GRAPH_NODES_MAX) {
		snprintf(msg, sizeof(msg),
			 "the graph would have %zu nodes, more than the %d the view lays out: "
			 "collapse groups",
			 nodes, GRAPH_NODES_MAX);
		ferry__ui_error_reply(r, 413, msg);
		goto out;
	}
	pthread_mutex_lock(&graph_mu);
	layout(&w, dir, r);
	pthread_mutex_unlock(&graph_mu);
out:
	wgraph_free(&w);
	return 0;
}

static int state_row(void *data, const struct ferry_job_info *j)
{
	json_t *a = data;

	if (json_array_size(a) == GRAPH_JOBS_MAX)
		return 1;
	return json_array_append_new(a, json_pack("[I,s,s]", (json_int_t)j->id,
						  ferry_status_name(j->status),
						  ferry_exit_status_name(j->exit_status)))
		   ? -FERRY_ENOMEM
		   : 0;
}

/* /api/workflow-jobs?resource=R&workflow=W: [id, state, exit status] of each of its jobs. */
static int get_states(struct ui_state *st, ui_arg_fn arg, void *ctx, struct ui_reply *r)
{
	struct ferry_list_opts o;
	struct ui_res *res;
	ferry_conn *c = ferry__ui_resource_arg(st, arg(ctx, "resource"), r, &res);
	json_t *a;
	int rc;

	ferry_list_opts_init(&o);
	if (!c || workflow_arg(arg, ctx, &o.workflow, r) < 0)
		return 0;
	if (!(a = json_array())) {
		ferry__ui_error_reply(r, 500, "out of memory");
		return 0;
	}
	o.limit = GRAPH_JOBS_MAX;
	pthread_mutex_lock(&res->call_mu);
	rc = ferry_list_jobs(c, &o, state_row, a);
	if (rc < 0)
		ferry__ui_ferry_error(r, c, rc);
	pthread_mutex_unlock(&res->call_mu);
	if (rc < 0)
		json_decref(a);
	else
		ferry__ui_json_reply(r, 200, json_pack("{s:o}", "jobs", a));
	return 0;
}

/* /api/workflows?resource=R: the newest WORKFLOWS_MAX workflows, oldest first. */
static int get_workflows(struct ui_state *st, ui_arg_fn arg, void *ctx, struct ui_reply *r)
{
	struct ferry_workflow_info **list = NULL;
	struct ui_res *res;
	ferry_conn *c = ferry__ui_resource_arg(st, arg(ctx, "resource"), r, &res);
	size_t n = 0;
	json_t *a;
	int rc;

	if (!c)
		return 0;
	pthread_mutex_lock(&res->call_mu);
	rc = ferry_workflows(c, &list, &n);
	if (rc < 0)
		ferry__ui_ferry_error(r, c, rc);
	pthread_mutex_unlock(&res->call_mu);
	if (rc < 0)
		return 0;
	a = json_array();
	for (size_t i = n > WORKFLOWS_MAX ? n - WORKFLOWS_MAX : 0; a && i < n; i++)
		json_array_append_new(a,
				      json_pack("{s:I,s:o,s:s,s:I}", "id", (json_int_t)list[i]->id,
						"name", ferry__json_bytes(list[i]->name), "state",
						ferry_workflow_state_name(list[i]->state), "jobs",
						(json_int_t)list[i]->jobs));
	ferry_workflows_free(list, n);
	ferry__ui_json_reply(r, 200,
			     json_pack("{s:o*,s:I}", "workflows", a, "total", (json_int_t)n));
	return 0;
}

int ferry__ui_graph_get(struct ui_state *st, const char *url, ui_arg_fn arg, void *ctx,
			struct ui_reply *r)
{
	if (!strcmp(url, "/api/workflows"))
		return get_workflows(st, arg, ctx, r);
	if (!strcmp(url, "/api/graph"))
		return get_graph(st, arg, ctx, r);
	if (!strcmp(url, "/api/workflow-jobs"))
		return get_states(st, arg, ctx, r);
	return -1;
}

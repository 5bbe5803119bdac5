/* ox_blocks.c — repeated structures as blocks. After the graph is translated, the model's
 * statements are grouped by instance: the layer scope up to its first numeric component
 * (`layer1.0.conv1` belongs to `layer1.0`, `encoder.layer.3.attention.query` to
 * `encoder.layer.3`), together with the unnamed statements (relu, add) that follow it. Runs
 * whose text is identical once their own values and the values they read are renamed
 * become one `block`, called once per instance with `name = "<instance>"`, so parameter
 * names do not change. Runs that define constants, or whose values other than the last are
 * read after the run, stay as they are. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "ox.h"

typedef struct OxStmt {
  char *lhs, *rhs, *comment; /* `lhs = rhs  # comment`; lhs NULL for other lines */
  char *line;
  const char *inst; /* instance prefix, or NULL */
} OxStmt;

typedef struct OxRun {
  int first, last; /* statement range, inclusive */
  char *sig;       /* normalized text */
  int nargs;
  const char *args[32];
  int block; /* index into the block list, or -1 */
} OxRun;

static const char *instance_of(OxCtx *c, const char *rhs) {
  const char *p = strstr(rhs, "name = \"");
  if (!p) return NULL;
  p += 8;
  const char *end = strchr(p, '"'), *comp = p;
  for (const char *q = p; q < end; q++) {
    if (*q != '.') continue;
    int digits = q > comp;
    for (const char *r = comp; r < q; r++) digits &= isdigit((unsigned char)*r) != 0;
    if (digits) return arena_printf(c->a, "%.*s", (int)(q - p), p);
    comp = q + 1;
  }
  return NULL;
}

static int split_lines(OxCtx *c, OxStmt **out) {
  int n = 0, cap = 0;
  OxStmt *s = NULL;
  char *text = arena_strdup(c->a, c->body_buf ? c->body_buf : "");
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    arena_grow(c->a, (void **)&s, &cap, n + 1, sizeof *s);
    OxStmt *st = &s[n++];
    memset(st, 0, sizeof *st);
    st->line = line;
    char *eq = strstr(line, " = "), *hash = strchr(line, '#');
    if (strncmp(line, "  ", 2) || !eq || !strncmp(line, "  param ", 8) || (hash && hash < eq))
      continue;
    st->lhs = arena_printf(c->a, "%.*s", (int)(eq - line - 2), line + 2);
    char *r = eq + 3, *e = hash ? hash : r + strlen(r);
    while (e > r && e[-1] == ' ') e--;
    st->rhs = arena_printf(c->a, "%.*s", (int)(e - r), r);
    st->comment = hash ? hash : "";
    st->inst = instance_of(c, st->rhs);
  }
  *out = s;
  return n;
}

static int local_index(const OxStmt *s, const OxRun *r, const char *id, int upto) {
  for (int i = r->first; i < upto && i <= r->last; i++)
    if (s[i].lhs && !strcmp(s[i].lhs, id)) return i - r->first;
  return -1;
}

/* rhs of statement k with locals as %L<n>, values from outside as %A<n>, scope prefix cut */
static char *normalize(OxCtx *c, const OxStmt *s, OxRun *r, int k) {
  char *o = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&o, &len);
  if (!f) return NULL;
  const char *p = s[k].rhs, *inst = s[r->first].inst ? s[r->first].inst : s[k].inst;
  size_t il = inst ? strlen(inst) : 0;
  while (*p) {
    if (*p == '"') {
      const char *e = strchr(p + 1, '"');
      e = e ? e : p + strlen(p) - 1;
      if (inst && !strncmp(p + 1, inst, il) && p[1 + il] == '.')
        fprintf(f, "\"%.*s", (int)(e - p - il - 2), p + il + 2);
      else
        fprintf(f, "%.*s", (int)(e - p), p);
      p = e;
      fputc(*p++, f);
      continue;
    }
    if (isdigit((unsigned char)*p)) { /* a number, exponent included */
      const char *b = p;
      while (isalnum((unsigned char)*p) || *p == '.' ||
             ((*p == '+' || *p == '-') && (p[-1] == 'e' || p[-1] == 'E')))
        p++;
      fprintf(f, "%.*s", (int)(p - b), b);
      continue;
    }
    if (!(isalpha((unsigned char)*p) || *p == '_')) {
      fputc(*p++, f);
      continue;
    }
    const char *b = p;
    while (isalnum((unsigned char)*p) || *p == '_') p++;
    char *id = arena_printf(c->a, "%.*s", (int)(p - b), b);
    int loc = local_index(s, r, id, k), arg = -1;
    OxVal *v = NULL;
    for (int i = 0; loc < 0 && i < c->nvals && !v; i++)
      if (c->vals[i].id && !strcmp(c->vals[i].id, id)) v = &c->vals[i];
    if (loc >= 0)
      fprintf(f, "%%L%d", loc);
    else if (v && *p != '(' && strncmp(p, " = ", 3)) {
      for (int i = 0; i < r->nargs; i++)
        if (!strcmp(r->args[i], id)) arg = i;
      if (arg < 0 && r->nargs < 32) r->args[arg = r->nargs++] = id;
      fprintf(f, "%%A%d", arg);
    } else
      fputs(id, f);
  }
  fclose(f);
  char *res = arena_strdup(c->a, o ? o : "");
  free(o);
  return res;
}

/* locals other than the last are read after the run */
static int escapes(const OxStmt *s, int n, const OxRun *r) {
  for (int i = r->first; i < r->last; i++) {
    size_t l = strlen(s[i].lhs);
    for (int k = r->last + 1; k < n; k++) {
      const char *line = s[k].rhs ? s[k].rhs : s[k].line;
      for (const char *p = strstr(line, s[i].lhs); p; p = strstr(p + 1, s[i].lhs))
        if ((p == line || !(isalnum((unsigned char)p[-1]) || p[-1] == '_')) &&
            !(isalnum((unsigned char)p[l]) || p[l] == '_'))
          return 1;
    }
  }
  return 0;
}

static int make_sig(OxCtx *c, const OxStmt *s, OxRun *r) {
  size_t cap = 1;
  char **parts = arena_alloc(c->a, (size_t)(r->last - r->first + 1) * sizeof *parts);
  for (int k = r->first; k <= r->last; k++) {
    if (!s[k].lhs) return -1;
    if (!(parts[k - r->first] = normalize(c, s, r, k))) return -1;
    cap += strlen(parts[k - r->first]) + 1;
  }
  r->sig = arena_alloc(c->a, cap);
  for (int k = 0; k <= r->last - r->first; k++) strcat(strcat(r->sig, parts[k]), "\n");
  return 0;
}

/* the runs: each instance's statements plus the unnamed ones after them */
static int find_runs(OxCtx *c, const OxStmt *s, int n, OxRun *runs, int max) {
  int nr = 0;
  for (int i = 0; i < n && nr < max;) {
    if (!s[i].inst) {
      i++;
      continue;
    }
    OxRun r = {.first = i, .last = i, .block = -1};
    int k = i + 1, ok = 1;
    while (k < n && s[k].lhs && (!s[k].inst || !strcmp(s[k].inst, s[i].inst))) {
      if (s[k].inst) r.last = k;
      k++;
    }
    while (r.last + 1 < k && s[r.last + 1].lhs && !s[r.last + 1].inst) r.last++;
    while (r.last > r.first && escapes(s, n, &r)) r.last--;
    for (int j = 0; j < i && ok; j++) ok = !s[j].inst || strcmp(s[j].inst, s[i].inst);
    if (ok && r.last > r.first && !escapes(s, n, &r) && !make_sig(c, s, &r)) runs[nr++] = r;
    i = r.last + 1 > k ? r.last + 1 : k;
  }
  return nr;
}

/* a local's name inside the block: without the instance's prefix where that stays unique */
static const char *local_name(OxCtx *c, const OxStmt *s, const OxRun *r, int k, const char **taken,
                              int ntaken) {
  const char *lhs = s[r->first + k].lhs, *inst = s[r->first].inst;
  size_t il = strlen(inst);
  char *pre = arena_strdup(c->a, inst);
  for (char *p = pre; *p; p++) *p = *p == '.' ? '_' : *p;
  const char *nm = !strncmp(lhs, pre, il) && lhs[il] == '_' ? lhs + il + 1 : lhs;
  int ok = (isalpha((unsigned char)nm[0]) || nm[0] == '_') && !ox_reserved(nm);
  for (int i = 0; i < c->nsyms && ok; i++) ok = strcmp(c->symid[i], nm) != 0;
  for (int i = 0; i < ntaken && ok; i++) ok = strcmp(taken[i], nm) != 0;
  return ok ? nm : lhs;
}

static void write_block(OxCtx *c, FILE *f, const OxStmt *s, const OxRun *r, const char *name) {
  int nl = r->last - r->first + 1;
  const char **names = arena_alloc(c->a, (size_t)(nl + r->nargs) * sizeof *names);
  fprintf(f, "block %s(", name);
  for (int i = 0; i < r->nargs; i++) {
    names[nl + i] = r->nargs == 1 ? "x" : arena_printf(c->a, "x%d", i);
    fprintf(f, "%s%s", i ? ", " : "", names[nl + i]);
  }
  fprintf(f, ") {\n");
  for (int k = 0; k < nl; k++) {
    names[k] = local_name(c, s, r, k, names, k);
    for (int i = 0; i < r->nargs; i++)
      if (!strcmp(names[k], names[nl + i])) names[k] = s[r->first + k].lhs;
  }
  const char *line = r->sig;
  for (int k = 0; k < nl; k++) {
    int w = fprintf(f, "  %s = ", names[k]);
    for (; *line && *line != '\n'; line++) {
      if (*line != '%' || (line[1] != 'L' && line[1] != 'A')) {
        fputc(*line, f), w++;
        continue;
      }
      char kind = line[1], *end;
      int idx = (int)strtol(line + 2, &end, 10);
      w += fprintf(f, "%s", names[kind == 'L' ? idx : nl + idx]);
      line = end - 1;
    }
    line += *line == '\n';
    fprintf(f, "%*s%s\n", w < 48 ? 48 - w : 1, "", s[r->first + k].comment);
  }
  fprintf(f, "  return %s\n}\n\n", names[nl - 1]);
}

/* rewrites c->body_buf: runs with a twin become calls; block definitions go to *defs */
int ox_make_blocks(OxCtx *c, char **defs, size_t *defs_len) {
  OxStmt *s;
  int n = split_lines(c, &s), nb = 0;
  OxRun *runs = arena_alloc(c->a, (size_t)(n + 1) * sizeof *runs);
  int nr = find_runs(c, s, n, runs, n);
  FILE *df = open_memstream(defs, defs_len), *bf;
  char *nb_buf = NULL;
  size_t nb_len = 0;
  if (!df || !(bf = open_memstream(&nb_buf, &nb_len))) return df ? fclose(df), -1 : -1;
  const char **names = arena_alloc(c->a, (size_t)(nr + 1) * sizeof *names);
  for (int i = 0; i < nr; i++) {
    for (int j = 0; j < i && runs[i].block < 0; j++)
      if (runs[j].nargs == runs[i].nargs && !strcmp(runs[j].sig, runs[i].sig)) {
        if (runs[j].block < 0) {
          runs[j].block = nb;
          names[nb] = ox_ident(c, arena_printf(c->a, "%s_block", s[runs[j].first].inst));
          write_block(c, df, s, &runs[j], names[nb++]);
        }
        runs[i].block = runs[j].block;
      }
  }
  for (int k = 0, ri = 0; k < n; k++) {
    while (ri < nr && runs[ri].last < k) ri++;
    if (ri < nr && runs[ri].block >= 0 && k >= runs[ri].first) {
      if (k < runs[ri].last) continue;
      OxRun *r = &runs[ri];
      int w = fprintf(bf, "  %s = %s(", s[k].lhs, names[r->block]);
      for (int a = 0; a < r->nargs; a++) w += fprintf(bf, "%s, ", r->args[a]);
      w += fprintf(bf, "name = \"%s\")", s[r->first].inst);
      fprintf(bf, "%*s# block: %d statements\n", w < 48 ? 48 - w : 1, "", r->last - r->first + 1);
      continue;
    }
    fprintf(bf, "%s\n", s[k].line);
  }
  fclose(df);
  fclose(bf);
  free(c->body_buf);
  c->body_buf = nb_buf;
  c->body_len = nb_len;
  return 0;
}

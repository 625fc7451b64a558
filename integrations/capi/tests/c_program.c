/* A C program against include/nequip_rs.h (integrations/capi/tests/test_c_program.py compiles it
 * with -std=c99 -Wall -Wextra -Werror -pedantic and compares its numbers with `nequip evaluate`).
 *
 * usage: c_program MODEL INPUT
 * INPUT: n_atoms, then "cell" and 9 numbers or "nocell", then n_atoms lines "type x y z".
 * Prints (one value per line, %.17g): energy, 3n forces, 9 virial, n atom energies; for a
 * structure without cell also the same from nqrs_compute_graph on the all-pairs graph. Then it
 * checks the error paths and prints "errors ok". Exit 0 only when everything worked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nequip_rs.h"

static int fail(const char *what, int rc) {
  fprintf(stderr, "%s failed (code %d): %s\n", what, rc, nqrs_last_error());
  return 1;
}

static void print_all(double e, const double *f, const double *v, const double *ae, long n) {
  long i;
  printf("%.17g\n", e);
  for (i = 0; i < 3 * n; i++) printf("%.17g\n", f[i]);
  for (i = 0; i < 9; i++) printf("%.17g\n", v[i]);
  for (i = 0; i < n; i++) printf("%.17g\n", ae[i]);
}

int main(int argc, char **argv) {
  nqrs_model *model = NULL;
  FILE *in;
  long n, i, j, k, n_edges = 0;
  char word[16];
  double cell[9], r_max = 0.0, e = 0.0, v[9];
  double *pos, *f, *ae, *vec;
  int32_t *types, ntypes = 0, nlayers = 0;
  int64_t *edges;
  int has_cell, rc;
  const char *name = NULL, *dtype = NULL;

  if (argc != 3) {
    fprintf(stderr, "usage: %s MODEL INPUT\n", argv[0]);
    return 2;
  }
  if ((rc = nqrs_model_load(argv[1], "cpu", &model)) != NQRS_OK) return fail("nqrs_model_load", rc);
  if ((rc = nqrs_model_r_max(model, &r_max)) != NQRS_OK) return fail("nqrs_model_r_max", rc);
  if ((rc = nqrs_model_num_types(model, &ntypes)) != NQRS_OK) return fail("nqrs_model_num_types", rc);
  if ((rc = nqrs_model_type_name(model, 0, &name)) != NQRS_OK) return fail("nqrs_model_type_name", rc);
  if ((rc = nqrs_model_dtype(model, &dtype)) != NQRS_OK) return fail("nqrs_model_dtype", rc);
  if ((rc = nqrs_model_num_layers(model, &nlayers)) != NQRS_OK) return fail("nqrs_model_num_layers", rc);
  fprintf(stderr, "nequip-rs %s: r_max %g, %d types (first %s), %s, %d layers\n", nqrs_version(), r_max,
          (int)ntypes, name, dtype, (int)nlayers);

  in = fopen(argv[2], "r");
  if (!in || fscanf(in, "%ld %15s", &n, word) != 2) return 2;
  has_cell = strcmp(word, "cell") == 0;
  if (has_cell)
    for (k = 0; k < 9; k++)
      if (fscanf(in, "%lf", &cell[k]) != 1) return 2;
  pos = malloc(sizeof(double) * 3 * n);
  f = malloc(sizeof(double) * 3 * n);
  ae = malloc(sizeof(double) * n);
  types = malloc(sizeof(int32_t) * n);
  for (i = 0; i < n; i++) {
    int t;
    if (fscanf(in, "%d %lf %lf %lf", &t, &pos[3 * i], &pos[3 * i + 1], &pos[3 * i + 2]) != 4) return 2;
    types[i] = t;
  }
  fclose(in);

  rc = nqrs_compute(model, n, pos, types, has_cell ? cell : NULL, NULL, &e, f, v, ae);
  if (rc != NQRS_OK) return fail("nqrs_compute", rc);
  print_all(e, f, v, ae, n);

  if (!has_cell) {
    /* the same through the graph entry point: all pairs (the library drops those >= r_max) */
    edges = malloc(sizeof(int64_t) * 2 * n * n);
    vec = malloc(sizeof(double) * 3 * n * n);
    for (i = 0; i < n; i++)
      for (j = 0; j < n; j++)
        if (i != j) {
          edges[n_edges] = i;
          for (k = 0; k < 3; k++) vec[3 * n_edges + k] = pos[3 * j + k] - pos[3 * i + k];
          n_edges++;
        }
    n_edges = 0;
    for (i = 0; i < n; i++)
      for (j = 0; j < n; j++)
        if (i != j) edges[n * (n - 1) + n_edges++] = j;
    rc = nqrs_compute_graph(model, n, types, n, n_edges, edges, vec, &e, f, v, ae);
    if (rc != NQRS_OK) return fail("nqrs_compute_graph", rc);
    print_all(e, f, v, ae, n);
    free(edges);
    free(vec);
  }

  /* error paths: codes and messages, never a crash */
  types[0] = ntypes;
  rc = nqrs_compute(model, n, pos, types, has_cell ? cell : NULL, NULL, &e, NULL, NULL, NULL);
  if (rc != NQRS_ERROR_INVALID_ARGUMENT || !strstr(nqrs_last_error(), "atom 0 has type")) return fail("bad type check", rc);
  types[0] = 0;
  rc = nqrs_compute(NULL, n, pos, types, NULL, NULL, &e, NULL, NULL, NULL);
  if (rc != NQRS_ERROR_INVALID_ARGUMENT || !strstr(nqrs_last_error(), "NULL")) return fail("NULL handle check", rc);
  rc = nqrs_compute(model, n, NULL, types, NULL, NULL, &e, NULL, NULL, NULL);
  if (rc != NQRS_ERROR_INVALID_ARGUMENT || !strstr(nqrs_last_error(), "positions")) return fail("NULL positions check", rc);
  rc = nqrs_model_type_name(model, ntypes, &name);
  if (rc != NQRS_ERROR_INVALID_ARGUMENT) return fail("type index check", rc);
  {
    nqrs_model *none = NULL;
    rc = nqrs_model_load("/nonexistent/model.safetensors", NULL, &none);
    if (rc != NQRS_ERROR_MODEL_FILE || none != NULL || !strstr(nqrs_last_error(), "/nonexistent/model.safetensors"))
      return fail("missing file check", rc);
  }
  if (nqrs_set_num_threads(0) != NQRS_ERROR_INVALID_ARGUMENT) return fail("thread count check", 0);
  printf("errors ok\n");

  nqrs_model_free(model);
  nqrs_model_free(NULL);
  free(pos);
  free(f);
  free(ae);
  free(types);
  return 0;
}

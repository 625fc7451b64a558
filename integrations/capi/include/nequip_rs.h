/*
 * nequip_rs.h — the C ABI of nequip-rs models (library: libnequip_capi.so / libnequip_capi.a,
 * crate integrations/capi). One handle per model file (best_model.safetensors, `nequip deploy
 * build`, `nequip import`); energies in the model's units (eV), lengths in its units (Å).
 *
 * Conventions
 *  - Every function returns NQRS_OK (0) or an error code; after an error, nqrs_last_error()
 *    returns a message (thread-local, valid until the next failing call on the same thread).
 *  - All floating-point inputs and outputs are double, whatever the model's dtype.
 *  - Arrays are C-contiguous: positions[3*i + k], cell[3*a + k] (row a = lattice vector a),
 *    virial[3*a + b], edge_index = n_edges centres followed by n_edges neighbours.
 *  - Optional outputs may be NULL (then they are not computed, and cost nothing).
 *  - A handle may be shared between threads: calls on one handle are serialised.
 *  - The virial is nequip's: virial = -dE/d(strain) (symmetric); ASE's stress = -virial / volume;
 *    LAMMPS's pair virial (xx, yy, zz, xy, xz, yz) is the same tensor.
 */
#ifndef NEQUIP_RS_H
#define NEQUIP_RS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NQRS_OK 0
/* a NULL pointer, a negative count, a type index out of range, a non-finite coordinate, ... */
#define NQRS_ERROR_INVALID_ARGUMENT 1
/* the model file is missing, unreadable, not a nequip-rs model, or does not build */
#define NQRS_ERROR_MODEL_FILE 2
/* the model failed to evaluate (libtorch error, degenerate cell, ...) */
#define NQRS_ERROR_COMPUTE 3
/* an internal error (a Rust panic caught at the boundary) */
#define NQRS_ERROR_INTERNAL 4

typedef struct nqrs_model nqrs_model;

/* The message of the last failing call on this thread ("" when none). Never NULL. */
const char *nqrs_last_error(void);

/* The library's version string, e.g. "0.1.0". */
const char *nqrs_version(void);

/* The number of threads libtorch and the native kernels use in this process (all handles);
 * n >= 1. Without a call, libtorch's default (OMP_NUM_THREADS, else the number of cores). */
int nqrs_set_num_threads(int32_t n);

/* Load a model file onto `device` ("cpu", "cuda", "cuda:N"; NULL = "cpu"). */
int nqrs_model_load(const char *path, const char *device, nqrs_model **model);

/* Free a handle (NULL is allowed). */
void nqrs_model_free(nqrs_model *model);

/* The model's cutoff radius r_max. */
int nqrs_model_r_max(const nqrs_model *model, double *r_max);
/* The number of atom types; type indices passed to the compute functions are 0 .. n-1. */
int nqrs_model_num_types(const nqrs_model *model, int32_t *num_types);
/* The name of type `index` (e.g. "C"); the string lives as long as the handle. */
int nqrs_model_type_name(const nqrs_model *model, int32_t index, const char **name);
/* "float32" or "float64"; the string lives as long as the handle. */
int nqrs_model_dtype(const nqrs_model *model, const char **dtype);
/* The number of message-passing (interaction) layers: the receptive field is
 * num_layers * r_max, the ghost shell a domain-decomposed engine needs. */
int nqrs_model_num_layers(const nqrs_model *model, int32_t *num_layers);
/* A constant the model adds to the total energy of every structure (nequip's global energy
 * shift; 0 for most models). nqrs_compute includes it; nqrs_compute_graph does not. */
int nqrs_model_energy_shift(const nqrs_model *model, double *shift);
/* The device the model runs on, e.g. "cpu"; the string lives as long as the handle. */
int nqrs_model_device(const nqrs_model *model, const char **device);

/* Energy, forces, virial and per-atom energies of one structure; neighbours are found by the
 * library. cell: 9 doubles (rows = lattice vectors) or NULL (no cell, no periodicity);
 * pbc: 3 flags or NULL (= periodic along every axis when a cell is given).
 * forces: 3*n_atoms, virial: 9, atom_energies: n_atoms; each may be NULL. */
int nqrs_compute(nqrs_model *model, int64_t n_atoms, const double *positions, const int32_t *types,
                 const double *cell, const int32_t *pbc, double *energy, double *forces,
                 double *virial, double *atom_energies);

/* The same on a graph given by the engine (e.g. LAMMPS's neighbour list with local and ghost
 * atoms). Nodes 0 .. n_nodes-1 with `types`; directed edges (centre i -> neighbour j) with their
 * vectors r_j - r_i (periodic images already applied); edges of length >= r_max are skipped, so
 * lists with a skin may be passed as they are. A full list is expected (both i->j and j->i).
 * The energy is the sum of the per-atom energies of nodes 0 .. n_energy_nodes-1 (without the
 * model's energy shift); forces = -d(energy)/d(node positions), on every node (3*n_nodes);
 * virial = -d(energy)/d(strain) from the edge vectors; atom_energies: n_energy_nodes. */
int nqrs_compute_graph(nqrs_model *model, int64_t n_nodes, const int32_t *types,
                       int64_t n_energy_nodes, int64_t n_edges, const int64_t *edge_index,
                       const double *edge_vectors, double *energy, double *forces,
                       double *virial, double *atom_energies);

#ifdef __cplusplus
}
#endif

#endif /* NEQUIP_RS_H */

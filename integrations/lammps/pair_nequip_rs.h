/* pair_style nequip/rs: NequIP potentials evaluated by nequip-rs through its C ABI
 * (integrations/capi/include/nequip_rs.h, libnequip_capi.so). Loaded as a LAMMPS plugin.
 *
 *   pair_style nequip/rs [ghost] [device cpu|cuda|cuda:N] [threads N]
 *   pair_coeff * * model.safetensors Name1 ... NameNtypes
 *
 * Two ways to build the graph handed to nqrs_compute_graph():
 *  - owner mode (one MPI rank, default): nodes = local atoms; a neighbour j of local atom i
 *    (possibly a periodic image, i.e. a ghost) becomes the edge (i, owner(j)) with the vector
 *    x[j] - x[i]. Works for boxes smaller than 2 r_max (many images of one atom).
 *  - ghost mode (several ranks, or the `ghost` keyword): nodes = local + ghost atoms, edges among
 *    all of them (full neighbour list with ghost neighbours), energy of the local atoms only,
 *    forces on ghosts reverse-communicated to their owners. The ghost cutoff is raised to
 *    num_layers * r_max + skin so that message passing sees the whole receptive field.
 */
#ifdef PAIR_CLASS
// clang-format off
PairStyle(nequip/rs,PairNequipRs);
// clang-format on
#else

#ifndef LMP_PAIR_NEQUIP_RS_H
#define LMP_PAIR_NEQUIP_RS_H

#include "pair.h"

#include <cstdint>
#include <string>
#include <vector>

struct nqrs_model;

namespace LAMMPS_NS {

class PairNequipRs : public Pair {
 public:
  PairNequipRs(class LAMMPS *);
  ~PairNequipRs() override;

  void compute(int, int) override;
  void settings(int, char **) override;
  void coeff(int, char **) override;
  void init_style() override;
  double init_one(int, int) override;
  int pack_reverse_comm(int, int, double *) override;
  void unpack_reverse_comm(int, int *, double *) override;
  double memory_usage() override;

 protected:
  void allocate();
  void check_positions();

  nqrs_model *model;
  std::string device;
  std::string model_path;
  int ghost_keyword;    // 1 if `ghost` was given in pair_style
  int ghost_mode;       // effective: ghost_keyword || nprocs > 1
  int nthreads;         // 0 = library default
  double r_max;
  double energy_shift;
  int num_layers;
  std::vector<int32_t> type_map;    // LAMMPS type (1..ntypes) -> model type index

  // per-step buffers
  std::vector<int32_t> node_types;
  std::vector<int64_t> edge_src, edge_dst, edge_index;
  std::vector<double> edge_vec;
  std::vector<double> node_forces;
  std::vector<double> node_energies;
  std::vector<int> owner;             // owner mode: LAMMPS index -> local index
  std::vector<int> tag2local;         // owner mode: atom ID -> local index
  double **fghost;                    // ghost mode, newton off: forces for reverse comm
  int nmax_fghost;
};

}    // namespace LAMMPS_NS

#endif
#endif

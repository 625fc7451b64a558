/* pair_style nequip/rs: see pair_nequip_rs.h and README.md. */

#include "pair_nequip_rs.h"

#include "atom.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"
#include "utils.h"

#include "nequip_rs.h"

#include <algorithm>
#include <cmath>
#include <cstring>

using namespace LAMMPS_NS;

static const char *USAGE_STYLE = "pair_style nequip/rs [ghost] [device cpu|cuda|cuda:N] [threads N]";
static const char *USAGE_COEFF =
    "pair_coeff * * model.safetensors Name1 ... NameN (one model type name per LAMMPS atom type)";

/* ---------------------------------------------------------------------- */

PairNequipRs::PairNequipRs(LAMMPS *lmp) :
    Pair(lmp), model(nullptr), device("cpu"), ghost_keyword(0), ghost_mode(0), nthreads(0),
    r_max(0.0), energy_shift(0.0), num_layers(0), fghost(nullptr), nmax_fghost(0)
{
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 0;    // checked in coeff() with a clearer message
  manybody_flag = 1;
  no_virial_fdotr_compute = 1;
  centroidstressflag = CENTROID_NOTAVAIL;
  unit_convert_flag = 0;
  // ghost mode with newton_pair off: forces on ghosts are sent back by reverse_comm(this)
  comm_reverse = 3;
  comm_reverse_off = 3;
}

/* ---------------------------------------------------------------------- */

PairNequipRs::~PairNequipRs()
{
  if (copymode) return;
  nqrs_model_free(model);
  model = nullptr;
  memory->destroy(fghost);
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
    memory->destroy(cutghost);
  }
}

/* ---------------------------------------------------------------------- */

void PairNequipRs::allocate()
{
  allocated = 1;
  int n = atom->ntypes + 1;
  memory->create(setflag, n, n, "pair:setflag");
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) setflag[i][j] = 0;
  memory->create(cutsq, n, n, "pair:cutsq");
  memory->create(cutghost, n, n, "pair:cutghost");
}

/* ----------------------------------------------------------------------
   pair_style nequip/rs [ghost] [device DEV] [threads N]
------------------------------------------------------------------------- */

void PairNequipRs::settings(int narg, char **arg)
{
  ghost_keyword = 0;
  device = "cpu";
  nthreads = 0;
  int iarg = 0;
  while (iarg < narg) {
    std::string key = arg[iarg];
    if (key == "ghost") {
      ghost_keyword = 1;
      iarg += 1;
    } else if (key == "device") {
      if (iarg + 1 >= narg) error->all(FLERR, "pair_style nequip/rs: 'device' needs a value ({})", USAGE_STYLE);
      device = arg[iarg + 1];
      iarg += 2;
    } else if (key == "threads") {
      if (iarg + 1 >= narg) error->all(FLERR, "pair_style nequip/rs: 'threads' needs a value ({})", USAGE_STYLE);
      nthreads = utils::inumeric(FLERR, arg[iarg + 1], false, lmp);
      if (nthreads < 1) error->all(FLERR, "pair_style nequip/rs: 'threads' must be >= 1");
      iarg += 2;
    } else {
      error->all(FLERR, "pair_style nequip/rs: unknown keyword '{}' (usage: {})", key, USAGE_STYLE);
    }
  }
  ghost_mode = ghost_keyword || comm->nprocs > 1;
  ghostneigh = ghost_mode;
}

/* ----------------------------------------------------------------------
   pair_coeff * * model.safetensors Name1 ... NameN
------------------------------------------------------------------------- */

void PairNequipRs::coeff(int narg, char **arg)
{
  if (!allocated) allocate();
  const int ntypes = atom->ntypes;

  if (narg < 2 || strcmp(arg[0], "*") != 0 || strcmp(arg[1], "*") != 0)
    error->all(FLERR,
               "pair_coeff for pair style nequip/rs must start with '* *' (got '{} {}'): one call "
               "maps every LAMMPS atom type; usage: {}",
               narg > 0 ? arg[0] : "", narg > 1 ? arg[1] : "", USAGE_COEFF);
  if (narg < 3) error->all(FLERR, "pair_coeff for nequip/rs: missing model file; usage: {}", USAGE_COEFF);
  if (narg - 3 != ntypes)
    error->all(FLERR,
               "pair_coeff for nequip/rs: {} type name(s) given after the model file, but the "
               "system has {} atom type(s); give one model type name per LAMMPS atom type, in "
               "order; usage: {}",
               narg - 3, ntypes, USAGE_COEFF);

  nqrs_model_free(model);
  model = nullptr;
  model_path = arg[2];
  if (nqrs_model_load(model_path.c_str(), device.c_str(), &model) != NQRS_OK) {
    std::string msg = nqrs_last_error();
    model = nullptr;
    error->all(FLERR, "pair_coeff for nequip/rs: cannot load model file '{}' on device '{}': {}",
               model_path, device, msg);
  }

  int32_t ntypes_model = 0, nl = 0;
  const char *dtype = "?";
  const char *dev = "?";
  if (nqrs_model_r_max(model, &r_max) != NQRS_OK ||
      nqrs_model_num_types(model, &ntypes_model) != NQRS_OK ||
      nqrs_model_num_layers(model, &nl) != NQRS_OK ||
      nqrs_model_energy_shift(model, &energy_shift) != NQRS_OK ||
      nqrs_model_dtype(model, &dtype) != NQRS_OK || nqrs_model_device(model, &dev) != NQRS_OK)
    error->all(FLERR, "pair_coeff for nequip/rs: cannot query model '{}': {}", model_path,
               nqrs_last_error());
  num_layers = nl;

  std::vector<std::string> names(ntypes_model);
  for (int32_t k = 0; k < ntypes_model; k++) {
    const char *name = nullptr;
    if (nqrs_model_type_name(model, k, &name) != NQRS_OK || name == nullptr)
      error->all(FLERR, "pair_coeff for nequip/rs: cannot read type name {} of model '{}': {}", k,
                 model_path, nqrs_last_error());
    names[k] = name;
  }
  std::string all_names;
  for (const auto &n : names) all_names += (all_names.empty() ? "" : " ") + n;

  type_map.assign(ntypes + 1, -1);
  for (int t = 1; t <= ntypes; t++) {
    const std::string want = arg[2 + t];
    auto it = std::find(names.begin(), names.end(), want);
    if (it == names.end())
      error->all(FLERR,
                 "pair_coeff for nequip/rs: type name '{}' (LAMMPS atom type {}) is not a type of "
                 "model '{}'; the model's type names are: {}",
                 want, t, model_path, all_names);
    type_map[t] = static_cast<int32_t>(it - names.begin());
  }

  if (nthreads > 0 && nqrs_set_num_threads(nthreads) != NQRS_OK)
    error->all(FLERR, "pair_style nequip/rs: cannot set {} threads: {}", nthreads, nqrs_last_error());

  for (int i = 1; i <= ntypes; i++)
    for (int j = i; j <= ntypes; j++) setflag[i][j] = 1;

  if (comm->me == 0) {
    std::string mapping;
    for (int t = 1; t <= ntypes; t++)
      mapping += fmt::format("{}{}->{}", t > 1 ? " " : "", t, names[type_map[t]]);
    utils::logmesg(lmp,
                   "nequip/rs: model '{}' (nequip-rs {}): {}, r_max {}, {} layer(s), types [{}], "
                   "device {}, energy shift {}; LAMMPS types {}\n",
                   model_path, nqrs_version(), dtype, r_max, num_layers, all_names, dev,
                   energy_shift, mapping);
  }
}

/* ---------------------------------------------------------------------- */

void PairNequipRs::init_style()
{
  if (atom->tag_enable == 0)
    error->all(FLERR, "pair style nequip/rs requires atom IDs (atom_modify id yes)");
  if (model == nullptr) error->all(FLERR, "pair style nequip/rs: no model loaded ({})", USAGE_COEFF);

  ghost_mode = ghost_keyword || comm->nprocs > 1;
  ghostneigh = ghost_mode;

  if (ghost_mode) {
    if (comm->mode != 0)
      error->all(FLERR, "pair style nequip/rs in ghost mode needs comm_modify mode single");
    neighbor->add_request(this, NeighConst::REQ_FULL | NeighConst::REQ_GHOST);
    // message passing: every node within num_layers * r_max of a local atom must be present
    // (plus the skin, atoms move between reneighbourings)
    const double need = num_layers * r_max + neighbor->skin;
    const bool raised = comm->cutghostuser < need;
    if (raised) comm->cutghostuser = need;
    if (comm->me == 0)
      utils::logmesg(lmp,
                     "nequip/rs: ghost mode ({} MPI rank(s){}): ghost cutoff (comm_modify cutoff) "
                     "{} {}; needed: {} layer(s) * r_max {} + skin {} = {}\n",
                     comm->nprocs, ghost_keyword ? ", 'ghost' keyword" : "",
                     raised ? "raised to" : "kept at", comm->cutghostuser, num_layers, r_max,
                     neighbor->skin, need);
  } else {
    neighbor->add_request(this, NeighConst::REQ_FULL);
  }
}

/* ---------------------------------------------------------------------- */

double PairNequipRs::init_one(int i, int j)
{
  if (ghostneigh) cutghost[i][j] = cutghost[j][i] = r_max;
  return r_max;
}

/* ----------------------------------------------------------------------
   non-finite coordinates: report the smallest offending atom ID on all ranks
------------------------------------------------------------------------- */

void PairNequipRs::check_positions()
{
  double **x = atom->x;
  tagint *tag = atom->tag;
  const int nlocal = atom->nlocal;
  tagint bad = MAXTAGINT;
  for (int i = 0; i < nlocal; i++)
    if (!std::isfinite(x[i][0]) || !std::isfinite(x[i][1]) || !std::isfinite(x[i][2]))
      bad = std::min(bad, tag[i]);
  tagint bad_all = MAXTAGINT;
  MPI_Allreduce(&bad, &bad_all, 1, MPI_LMP_TAGINT, MPI_MIN, world);
  if (bad_all != MAXTAGINT)
    error->all(FLERR, "pair style nequip/rs: non-finite position of atom ID {} at step {}",
               bad_all, update->ntimestep);
}

/* ---------------------------------------------------------------------- */

void PairNequipRs::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);
  if (vflag_atom || cvflag_atom)
    error->all(FLERR,
               "pair style nequip/rs does not compute per-atom virials (compute stress/atom, "
               "centroid/stress/atom, ...): only energies, forces, per-atom energies and the "
               "global virial");
  if (model == nullptr) error->all(FLERR, "pair style nequip/rs: no model loaded");

  check_positions();

  double **x = atom->x;
  double **f = atom->f;
  int *type = atom->type;
  tagint *tag = atom->tag;
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  const int newton_pair = force->newton_pair;

  if (nlocal == 0) return;    // no energy nodes on this rank: nothing to add

  const int inum = list->inum;
  const int gnum = ghost_mode ? list->gnum : 0;
  int *ilist = list->ilist;
  int *numneigh = list->numneigh;
  int **firstneigh = list->firstneigh;

  // nodes: owner mode = local atoms; ghost mode = all atoms (LAMMPS indices either way)
  const int n_nodes = ghost_mode ? nall : nlocal;

  if (!ghost_mode) {
    // owner(j): index of the local atom that ghost j is an image of
    tagint maxtag = 0;
    for (int i = 0; i < nall; i++) maxtag = std::max(maxtag, tag[i]);
    tag2local.assign(static_cast<size_t>(maxtag) + 1, -1);
    for (int i = 0; i < nlocal; i++) tag2local[tag[i]] = i;
    owner.resize(nall);
    for (int j = 0; j < nall; j++) {
      int o = (j < nlocal) ? j : tag2local[tag[j]];
      if (o < 0)
        error->one(FLERR,
                   "pair style nequip/rs: ghost atom ID {} has no local owner on this rank "
                   "(use the 'ghost' keyword)",
                   tag[j]);
      owner[j] = o;
    }
  }

  node_types.resize(std::max(n_nodes, 1));
  for (int i = 0; i < n_nodes; i++) {
    const int32_t t = type_map[type[i]];
    if (t < 0) error->one(FLERR, "pair style nequip/rs: atom type {} is not mapped", type[i]);
    node_types[i] = t;
  }

  // edges within r_max (a hair more: the library makes the exact length test)
  const double cut2 = r_max * r_max * (1.0 + 1e-10);
  edge_src.clear();
  edge_dst.clear();
  edge_vec.clear();
  for (int ii = 0; ii < inum + gnum; ii++) {
    const int i = ilist[ii];
    const double xi = x[i][0], yi = x[i][1], zi = x[i][2];
    const int *jlist = firstneigh[i];
    const int jnum = numneigh[i];
    for (int jj = 0; jj < jnum; jj++) {
      const int j = jlist[jj] & NEIGHMASK;
      const double dx = x[j][0] - xi, dy = x[j][1] - yi, dz = x[j][2] - zi;
      const double rsq = dx * dx + dy * dy + dz * dz;
      if (rsq >= cut2) continue;
      edge_src.push_back(i);
      edge_dst.push_back(ghost_mode ? j : owner[j]);
      edge_vec.push_back(dx);
      edge_vec.push_back(dy);
      edge_vec.push_back(dz);
    }
  }
  const int64_t n_edges = static_cast<int64_t>(edge_src.size());
  edge_index.resize(std::max<int64_t>(2 * n_edges, 1));
  std::copy(edge_src.begin(), edge_src.end(), edge_index.begin());
  std::copy(edge_dst.begin(), edge_dst.end(), edge_index.begin() + n_edges);
  if (edge_vec.empty()) edge_vec.push_back(0.0);

  node_forces.assign(3 * static_cast<size_t>(n_nodes), 0.0);
  node_energies.assign(std::max(nlocal, 1), 0.0);
  double energy = 0.0;
  double vir[9] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};

  const int rc = nqrs_compute_graph(model, n_nodes, node_types.data(), nlocal, n_edges,
                                    edge_index.data(), edge_vec.data(), &energy,
                                    node_forces.data(), vflag_global ? vir : nullptr,
                                    eflag_atom ? node_energies.data() : nullptr);
  if (rc != NQRS_OK)
    error->one(FLERR,
               "pair style nequip/rs: model evaluation failed at step {} ({} nodes, {} edges, "
               "error code {}): {}",
               update->ntimestep, n_nodes, n_edges, rc, nqrs_last_error());

  // forces
  for (int i = 0; i < nlocal; i++) {
    f[i][0] += node_forces[3 * i + 0];
    f[i][1] += node_forces[3 * i + 1];
    f[i][2] += node_forces[3 * i + 2];
  }
  if (ghost_mode && n_nodes > nlocal) {
    if (newton_pair) {
      // LAMMPS reverse-communicates f of ghosts to their owners
      for (int j = nlocal; j < nall; j++) {
        f[j][0] += node_forces[3 * j + 0];
        f[j][1] += node_forces[3 * j + 1];
        f[j][2] += node_forces[3 * j + 2];
      }
    } else {
      if (atom->nmax > nmax_fghost) {
        memory->destroy(fghost);
        nmax_fghost = atom->nmax;
        memory->create(fghost, nmax_fghost, 3, "pair:fghost");
      }
      for (int i = 0; i < nlocal; i++) fghost[i][0] = fghost[i][1] = fghost[i][2] = 0.0;
      for (int j = nlocal; j < nall; j++) {
        fghost[j][0] = node_forces[3 * j + 0];
        fghost[j][1] = node_forces[3 * j + 1];
        fghost[j][2] = node_forces[3 * j + 2];
      }
      comm->reverse_comm(this);
      for (int i = 0; i < nlocal; i++) {
        f[i][0] += fghost[i][0];
        f[i][1] += fghost[i][1];
        f[i][2] += fghost[i][2];
      }
    }
  }

  // energies: the model's constant shift once per structure (rank 0), spread over eatom
  if (eflag_global) eng_vdwl += energy + (comm->me == 0 ? energy_shift : 0.0);
  if (eflag_atom) {
    const double per_atom_shift = atom->natoms > 0 ? energy_shift / atom->natoms : 0.0;
    for (int i = 0; i < nlocal; i++) eatom[i] += node_energies[i] + per_atom_shift;
  }

  // global virial: xx yy zz xy xz yz from the (symmetric) 3x3 tensor
  if (vflag_global) {
    virial[0] += vir[0];
    virial[1] += vir[4];
    virial[2] += vir[8];
    virial[3] += 0.5 * (vir[1] + vir[3]);
    virial[4] += 0.5 * (vir[2] + vir[6]);
    virial[5] += 0.5 * (vir[5] + vir[7]);
  }
}

/* ---------------------------------------------------------------------- */

int PairNequipRs::pack_reverse_comm(int n, int first, double *buf)
{
  int m = 0;
  const int last = first + n;
  for (int i = first; i < last; i++) {
    buf[m++] = fghost[i][0];
    buf[m++] = fghost[i][1];
    buf[m++] = fghost[i][2];
  }
  return m;
}

/* ---------------------------------------------------------------------- */

void PairNequipRs::unpack_reverse_comm(int n, int *list, double *buf)
{
  int m = 0;
  for (int i = 0; i < n; i++) {
    const int j = list[i];
    fghost[j][0] += buf[m++];
    fghost[j][1] += buf[m++];
    fghost[j][2] += buf[m++];
  }
}

/* ---------------------------------------------------------------------- */

double PairNequipRs::memory_usage()
{
  double bytes = Pair::memory_usage();
  bytes += (double) edge_src.capacity() * sizeof(int64_t) * 2;
  bytes += (double) edge_index.capacity() * sizeof(int64_t);
  bytes += (double) edge_vec.capacity() * sizeof(double);
  bytes += (double) node_forces.capacity() * sizeof(double);
  bytes += (double) node_types.capacity() * sizeof(int32_t);
  bytes += (double) nmax_fghost * 3 * sizeof(double);
  return bytes;
}

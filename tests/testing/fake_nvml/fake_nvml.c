/* A stand-in for the NVIDIA Management Library (libnvidia-ml.so.1) for tests
 * on machines without a GPU. It exports the NVML entry points greenlight-agent
 * uses, with the real names, signatures and ABI, and serves GPUs and counters
 * from the text file named by GREENLIGHT_FAKE_NVML_FILE (format in README.md).
 * The agent loads it through the same dlopen path as the real driver library.
 *
 * The file name is captured by nvmlInit_v2; the file itself is re-read on every
 * call, so a test can rewrite counters while the agent runs. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAKE_EXPORT __attribute__((visibility("default")))

/* The subset of nvml.h used here; values and layouts as in the real header. */
typedef enum nvmlReturn_enum {
  NVML_SUCCESS = 0,
  NVML_ERROR_UNINITIALIZED = 1,
  NVML_ERROR_INVALID_ARGUMENT = 2,
  NVML_ERROR_NOT_SUPPORTED = 3,
  NVML_ERROR_NOT_FOUND = 6,
  NVML_ERROR_INSUFFICIENT_SIZE = 7,
  NVML_ERROR_UNKNOWN = 999
} nvmlReturn_t;

typedef struct nvmlDevice_st* nvmlDevice_t;

typedef struct nvmlMemory_st {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_t;

typedef struct nvmlUtilization_st {
  unsigned int gpu;
  unsigned int memory;
} nvmlUtilization_t;

#define FAKE_MAX_GPUS 64
#define FAKE_MAX_TEXT 96 /* NVML_DEVICE_UUID_V2_BUFFER_SIZE, ..._NAME_V2_... */
#define FAKE_DRIVER_VERSION "550.00.00-greenlight-fake"

typedef struct {
  char uuid[FAKE_MAX_TEXT];
  char name[FAKE_MAX_TEXT];
  unsigned long long memory_mib;
  unsigned int power_limit_mw;
  int energy_supported;
  unsigned long long energy_mj;
  unsigned int power_mw;
  unsigned int util_pct;
} FakeGpu;

typedef struct {
  unsigned int count;
  FakeGpu gpu[FAKE_MAX_GPUS]; /* by NVML index */
} FakeState;

/* A handle is the address of g_slots[index]; the content is never used. */
struct nvmlDevice_st {
  char unused;
};
static struct nvmlDevice_st g_slots[FAKE_MAX_GPUS];

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_init_count = 0; /* nvmlInit_v2 / nvmlShutdown are reference counted */
static char* g_file = NULL;  /* GREENLIGHT_FAKE_NVML_FILE captured at first init */

static int ParseU64(const char* s, unsigned long long max, unsigned long long* out) {
  char* end = NULL;
  if (s[0] < '0' || s[0] > '9') return 0;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || v > max) return 0;
  *out = v;
  return 1;
}

static int CopyText(const char* s, char* out) {
  size_t n = strlen(s);
  if (n == 0 || n >= FAKE_MAX_TEXT) return 0;
  memcpy(out, s, n + 1);
  return 1;
}

/* Parses the state file. Returns NVML_SUCCESS or NVML_ERROR_UNKNOWN (after one
 * line on stderr naming the file and the problem). Indices must be 0..n-1,
 * each exactly once, as NVML enumerates them. */
static nvmlReturn_t ReadState(const char* path, FakeState* st) {
  FILE* f = fopen(path, "r");
  if (f == NULL) {
    fprintf(stderr, "fake NVML: cannot read GREENLIGHT_FAKE_NVML_FILE=%s: %s\n", path,
            strerror(errno));
    return NVML_ERROR_UNKNOWN;
  }
  int seen[FAKE_MAX_GPUS] = {0};
  char line[1024];
  int lineno = 0;
  const char* problem = NULL;
  memset(st, 0, sizeof(*st));
  while (problem == NULL && fgets(line, sizeof(line), f) != NULL) {
    ++lineno;
    if (strchr(line, '\n') == NULL && !feof(f)) {
      problem = "line too long";
      break;
    }
    char* fields[9];
    int n = 0;
    char* save = NULL;
    for (char* tok = strtok_r(line, " \t\r\n", &save); tok != NULL;
         tok = strtok_r(NULL, " \t\r\n", &save)) {
      if (n == 9) {
        n = 10;
        break;
      }
      fields[n++] = tok;
    }
    if (n == 0 || fields[0][0] == '#') continue;
    if (n != 8) {
      problem =
          "want 8 fields: index uuid name memory_mib power_limit_mw energy_mj power_mw "
          "util_pct";
      break;
    }
    unsigned long long index, mib, limit, energy = 0, power, util;
    int energy_supported = strcmp(fields[5], "-") != 0;
    if (!ParseU64(fields[0], FAKE_MAX_GPUS - 1, &index) || !ParseU64(fields[3], 1ULL << 40, &mib) ||
        !ParseU64(fields[4], 0xffffffffULL, &limit) ||
        (energy_supported && !ParseU64(fields[5], ~0ULL, &energy)) ||
        !ParseU64(fields[6], 0xffffffffULL, &power) || !ParseU64(fields[7], 100, &util)) {
      problem = "bad number (index < 64, util_pct <= 100, energy_mj a number or -)";
      break;
    }
    if (seen[index]) {
      problem = "duplicate index";
      break;
    }
    FakeGpu* g = &st->gpu[index];
    if (!CopyText(fields[1], g->uuid) || !CopyText(fields[2], g->name)) {
      problem = "uuid and name must be 1..95 characters";
      break;
    }
    seen[index] = 1;
    g->memory_mib = mib;
    g->power_limit_mw = (unsigned int)limit;
    g->energy_supported = energy_supported;
    g->energy_mj = energy;
    g->power_mw = (unsigned int)power;
    g->util_pct = (unsigned int)util;
    if (index + 1 > st->count) st->count = (unsigned int)(index + 1);
  }
  if (problem == NULL && ferror(f)) problem = strerror(errno);
  fclose(f);
  for (unsigned int i = 0; problem == NULL && i < st->count; ++i) {
    if (!seen[i]) problem = "indices must be 0..n-1 without gaps";
  }
  if (problem != NULL) {
    fprintf(stderr, "fake NVML: %s:%d: %s\n", path, lineno, problem);
    return NVML_ERROR_UNKNOWN;
  }
  return NVML_SUCCESS;
}

/* Reads the current state (requires nvmlInit_v2). */
static nvmlReturn_t Current(FakeState* st) {
  pthread_mutex_lock(&g_mu);
  nvmlReturn_t r = g_init_count > 0 ? ReadState(g_file, st) : NVML_ERROR_UNINITIALIZED;
  pthread_mutex_unlock(&g_mu);
  return r;
}

/* Reads the current state and resolves `device` to its GPU. */
static nvmlReturn_t Lookup(nvmlDevice_t device, FakeState* st, const FakeGpu** gpu) {
  nvmlReturn_t r = Current(st);
  if (r != NVML_SUCCESS) return r;
  if (device < &g_slots[0] || device >= &g_slots[FAKE_MAX_GPUS]) {
    return NVML_ERROR_INVALID_ARGUMENT;
  }
  unsigned int index = (unsigned int)(device - &g_slots[0]);
  if (index >= st->count) return NVML_ERROR_NOT_FOUND; /* GPU gone from the file */
  *gpu = &st->gpu[index];
  return NVML_SUCCESS;
}

static nvmlReturn_t CopyOut(const char* s, char* out, unsigned int length) {
  if (out == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  size_t n = strlen(s);
  if (n + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
  memcpy(out, s, n + 1);
  return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlInit_v2(void) {
  nvmlReturn_t r = NVML_SUCCESS;
  pthread_mutex_lock(&g_mu);
  if (g_init_count == 0) {
    const char* path = getenv("GREENLIGHT_FAKE_NVML_FILE");
    FakeState* st = malloc(sizeof(FakeState));
    if (path == NULL || path[0] == '\0') {
      fprintf(stderr, "fake NVML: GREENLIGHT_FAKE_NVML_FILE is not set\n");
      r = NVML_ERROR_UNKNOWN;
    } else if (st == NULL) {
      r = NVML_ERROR_UNKNOWN;
    } else {
      r = ReadState(path, st);
      if (r == NVML_SUCCESS) {
        g_file = strdup(path);
        if (g_file == NULL) r = NVML_ERROR_UNKNOWN;
      }
    }
    free(st);
  }
  if (r == NVML_SUCCESS) ++g_init_count;
  pthread_mutex_unlock(&g_mu);
  return r;
}

FAKE_EXPORT nvmlReturn_t nvmlShutdown(void) {
  nvmlReturn_t r = NVML_SUCCESS;
  pthread_mutex_lock(&g_mu);
  if (g_init_count == 0) {
    r = NVML_ERROR_UNINITIALIZED;
  } else if (--g_init_count == 0) {
    free(g_file);
    g_file = NULL;
  }
  pthread_mutex_unlock(&g_mu);
  return r;
}

FAKE_EXPORT const char* nvmlErrorString(nvmlReturn_t result) {
  switch (result) {
    case NVML_SUCCESS:
      return "Success";
    case NVML_ERROR_UNINITIALIZED:
      return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT:
      return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED:
      return "Not Supported";
    case NVML_ERROR_NOT_FOUND:
      return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE:
      return "Insufficient Size";
    case NVML_ERROR_UNKNOWN:
      return "Unknown Error";
  }
  return "Unknown Error";
}

FAKE_EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char* version, unsigned int length) {
  FakeState* st = malloc(sizeof(FakeState));
  if (st == NULL) return NVML_ERROR_UNKNOWN;
  nvmlReturn_t r = Current(st);
  free(st);
  return r != NVML_SUCCESS ? r : CopyOut(FAKE_DRIVER_VERSION, version, length);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* device_count) {
  if (device_count == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  FakeState* st = malloc(sizeof(FakeState));
  if (st == NULL) return NVML_ERROR_UNKNOWN;
  nvmlReturn_t r = Current(st);
  if (r == NVML_SUCCESS) *device_count = st->count;
  free(st);
  return r;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* device) {
  if (device == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  FakeState* st = malloc(sizeof(FakeState));
  if (st == NULL) return NVML_ERROR_UNKNOWN;
  nvmlReturn_t r = Current(st);
  if (r == NVML_SUCCESS) {
    if (index >= st->count) {
      r = NVML_ERROR_INVALID_ARGUMENT; /* as the real library */
    } else {
      *device = &g_slots[index];
    }
  }
  free(st);
  return r;
}

/* Body of the per-device getters: reads the state, resolves the device and
 * runs `stmt` with `g` pointing at the GPU. */
#define FAKE_DEVICE_GETTER(device, out, stmt)              \
  do {                                                     \
    if ((out) == NULL) return NVML_ERROR_INVALID_ARGUMENT; \
    FakeState* st = malloc(sizeof(FakeState));             \
    if (st == NULL) return NVML_ERROR_UNKNOWN;             \
    const FakeGpu* g = NULL;                               \
    nvmlReturn_t r = Lookup((device), st, &g);             \
    if (r == NVML_SUCCESS) stmt;                           \
    free(st);                                              \
    return r;                                              \
  } while (0)

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char* uuid, unsigned int length) {
  FAKE_DEVICE_GETTER(device, uuid, r = CopyOut(g->uuid, uuid, length));
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char* name, unsigned int length) {
  FAKE_DEVICE_GETTER(device, name, r = CopyOut(g->name, name, length));
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory) {
  FAKE_DEVICE_GETTER(device, memory, {
    memory->total = g->memory_mib * 1024ULL * 1024ULL;
    memory->free = memory->total;
    memory->used = 0;
  });
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t device,
                                                           unsigned int* limit) {
  FAKE_DEVICE_GETTER(device, limit, *limit = g->power_limit_mw);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device,
                                                             unsigned long long* energy) {
  FAKE_DEVICE_GETTER(device, energy, {
    if (g->energy_supported) {
      *energy = g->energy_mj;
    } else {
      r = NVML_ERROR_NOT_SUPPORTED;
    }
  });
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int* power) {
  FAKE_DEVICE_GETTER(device, power, *power = g->power_mw);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device,
                                                       nvmlUtilization_t* utilization) {
  FAKE_DEVICE_GETTER(device, utilization, {
    utilization->gpu = g->util_pct;
    utilization->memory = 0;
  });
}

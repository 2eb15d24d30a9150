// greenlight-agent: the node agent (services/agent/agent.h, docs/AGENT.md).
//
// Flags are spelled with dashes (--token-file) or underscores (--token_file),
// as "--flag=value" or "--flag value". A bad flag or value exits 2 with a
// message naming the flag; a failure to start exits 1.
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <optional>
#include <set>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "services/agent/agent.h"

ABSL_FLAG(std::string, server, "", "greenlightd's gRPC address, HOST:PORT (required)");
ABSL_FLAG(std::string, token_file, "",
          "file holding the secret of an agent token bound to --pool (required; keep it 0600)");
ABSL_FLAG(std::string, pool, "", "the agent pool this node joins (required)");
ABSL_FLAG(std::string, node, "", "node name, [a-z0-9.-]{1,63} (default: the hostname, lowercased)");
ABSL_FLAG(std::string, state_dir, "/var/lib/greenlight-agent",
          "where jobs' records, logs and working dirs live");
ABSL_FLAG(std::string, nvml, greenlight::agent::NvmlLibrary::kDefaultPath,
          "the NVML library to dlopen (GPU discovery and energy)");
ABSL_FLAG(bool, no_nvml, false, "do not load NVML: declare the GPUs with --gpus/--gpu-type");
ABSL_FLAG(int, gpus, -1,
          "GPUs to declare when NVML is not used or fails to load (energy then modelled)");
ABSL_FLAG(std::string, gpu_type, "", "name of the declared GPUs (with --gpus), e.g. H100");
ABSL_FLAG(std::string, run_as, "", "run jobs as this user (the agent must run as root)");
ABSL_FLAG(bool, allow_root, false, "allow jobs to run as root (as root without --run-as)");
ABSL_FLAG(std::string, tls_ca, "", "CA of greenlightd's certificate: connect over TLS");
ABSL_FLAG(std::string, tls_cert, "", "client certificate for mutual TLS (with --tls-key)");
ABSL_FLAG(std::string, tls_key, "", "client private key for mutual TLS (with --tls-cert)");
ABSL_FLAG(absl::Duration, heartbeat_interval, absl::Seconds(1), "how often to heartbeat");
ABSL_FLAG(absl::Duration, report_interval, absl::Seconds(10),
          "how often each running job's energy is reported");
ABSL_FLAG(absl::Duration, grace, absl::Seconds(30),
          "SIGTERM-to-SIGKILL grace of a stop that names none");
ABSL_FLAG(std::string, log_level, "info", "debug|info|warn|error");

namespace {

constexpr char kUsage[] =
    "usage: greenlight-agent --server HOST:PORT --token-file FILE --pool POOL\n"
    "         [--node NAME] [--state-dir DIR] [--nvml PATH | --no-nvml]\n"
    "         [--gpus N --gpu-type NAME] [--run-as USER] [--allow-root]\n"
    "         [--tls-ca FILE [--tls-cert FILE --tls-key FILE]]\n"
    "         [--heartbeat-interval 1s] [--report-interval 10s] [--grace 30s]\n"
    "         [--log-level info]\n"
    "Registers this node with greenlightd, runs the jobs assigned to it and reports\n"
    "their start, GPU energy and exit (docs/AGENT.md).\n";

const std::set<std::string>& OwnFlags() {
  static const std::set<std::string> names = {"server",
                                              "token_file",
                                              "pool",
                                              "node",
                                              "state_dir",
                                              "nvml",
                                              "no_nvml",
                                              "gpus",
                                              "gpu_type",
                                              "run_as",
                                              "allow_root",
                                              "tls_ca",
                                              "tls_cert",
                                              "tls_key",
                                              "heartbeat_interval",
                                              "report_interval",
                                              "grace",
                                              "log_level"};
  return names;
}

[[noreturn]] void BadFlag(const std::string& flag, const std::string& why) {
  std::fprintf(stderr, "greenlight-agent: %s: %s\n%s", flag.c_str(), why.c_str(), kUsage);
  std::exit(2);
}

// Parses argv into the flags above: exits 2 naming the flag on any error.
void ParseFlags(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h" || arg == "--helpfull") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (!absl::StartsWith(arg, "-") || arg == "-" || arg == "--") {
      BadFlag(arg, "unexpected argument (greenlight-agent takes flags only)");
    }
    std::string body = arg.substr(arg[1] == '-' ? 2 : 1);
    std::optional<std::string> value;
    if (size_t eq = body.find('='); eq != std::string::npos) {
      value = body.substr(eq + 1);
      body.resize(eq);
    }
    std::string name = absl::StrReplaceAll(body, {{"-", "_"}});
    const std::string shown = absl::StrCat("--", body);
    bool negated = false;
    if (OwnFlags().count(name) == 0 && absl::StartsWith(name, "no") &&
        OwnFlags().count(name.substr(2)) > 0) {
      name = name.substr(2);
      negated = true;
    }
    if (OwnFlags().count(name) == 0) BadFlag(shown, "unknown flag");
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) BadFlag(shown, "unknown flag");
    if (flag->IsOfType<bool>()) {
      if (negated && value.has_value()) BadFlag(shown, "takes no value");
      if (!value.has_value()) value = negated ? "false" : "true";
    } else {
      if (negated) BadFlag(shown, "unknown flag");
      if (!value.has_value()) {
        if (i + 1 >= argc) BadFlag(shown, "needs a value");
        value = argv[++i];
      }
    }
    std::string error;
    if (!flag->ParseFrom(*value, &error)) {
      BadFlag(shown, absl::StrCat("bad value \"", *value, "\": ", error));
    }
  }
}

std::string DefaultNode() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "";
  std::string host = absl::AsciiStrToLower(buf);
  return host;
}

}  // namespace

int main(int argc, char** argv) {
  ParseFlags(argc, argv);
  greenlight::LogLevel level;
  if (!greenlight::ParseLogLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    BadFlag("--log-level", "must be debug, info, warn or error");
  }
  greenlight::SetLogLevel(level);

  greenlight::agent::AgentOptions o;
  o.server = absl::GetFlag(FLAGS_server);
  if (o.server.empty()) BadFlag("--server", "required: greenlightd's HOST:PORT");
  o.pool = absl::GetFlag(FLAGS_pool);
  if (o.pool.empty()) BadFlag("--pool", "required: the agent pool this node joins");
  const std::string token_file = absl::GetFlag(FLAGS_token_file);
  if (token_file.empty()) BadFlag("--token-file", "required: the agent token's secret");
  {
    FILE* f = std::fopen(token_file.c_str(), "r");
    if (f == nullptr) BadFlag("--token-file", absl::StrCat("cannot read ", token_file));
    char buf[4096];
    size_t n = std::fread(buf, 1, sizeof(buf), f);
    std::fclose(f);
    o.token = std::string(absl::StripAsciiWhitespace(std::string(buf, n)));
    if (o.token.empty()) BadFlag("--token-file", absl::StrCat(token_file, " is empty"));
    struct stat st;
    if (stat(token_file.c_str(), &st) == 0 && (st.st_mode & 0077) != 0) {
      GL_LOG_WARN("the token file is readable by other users: chmod 600 it",
                  greenlight::F("token_file", token_file));
    }
  }
  o.node = absl::GetFlag(FLAGS_node);
  if (o.node.empty()) o.node = DefaultNode();
  o.state_dir = absl::GetFlag(FLAGS_state_dir);
  o.use_nvml = !absl::GetFlag(FLAGS_no_nvml);
  o.nvml_path = absl::GetFlag(FLAGS_nvml);
  if (o.nvml_path.empty()) BadFlag("--nvml", "empty (give --no-nvml to not load NVML)");
  if (absl::GetFlag(FLAGS_gpus) >= 0) o.declared_gpus = absl::GetFlag(FLAGS_gpus);
  if (absl::GetFlag(FLAGS_gpus) < -1) BadFlag("--gpus", "must be >= 0");
  o.gpu_type = absl::GetFlag(FLAGS_gpu_type);
  o.run_as = absl::GetFlag(FLAGS_run_as);
  o.allow_root = absl::GetFlag(FLAGS_allow_root);
  o.tls_ca_file = absl::GetFlag(FLAGS_tls_ca);
  o.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  o.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  o.heartbeat_interval = absl::GetFlag(FLAGS_heartbeat_interval);
  o.report_interval = absl::GetFlag(FLAGS_report_interval);
  o.grace = absl::GetFlag(FLAGS_grace);

  std::signal(SIGPIPE, SIG_IGN);
  absl::StatusOr<std::unique_ptr<greenlight::agent::Agent>> agent =
      greenlight::agent::Agent::Create(o);
  if (!agent.ok()) {
    std::fprintf(stderr, "greenlight-agent: %s\n", std::string(agent.status().message()).c_str());
    return agent.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  static greenlight::agent::Agent* running = agent->get();
  auto on_signal = [](int) { running->Shutdown(); };
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  absl::Status s = (*agent)->Run();
  if (!s.ok()) {
    std::fprintf(stderr, "greenlight-agent: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}

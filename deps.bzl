"""flamekit_dependencies(): the external repositories flamekit builds with.

flamekit builds offline from Debian's packages. Each dependency is a small
local stand-in under third_party/ that maps an upstream repository name
(com_google_absl, com_googlesource_code_re2, ...) to the system library. A
workspace that vendors flamekit calls this from its WORKSPACE:

    local_repository(name = "flamekit", path = "third_party/flamekit")
    load("@flamekit//:deps.bzl", "flamekit_dependencies")
    flamekit_dependencies(flamekit_path = "third_party/flamekit")

Repositories the calling workspace already declares are left alone, so a
project with real archives of Abseil or GoogleTest keeps its own.
"""

# Bazel 4.2.3 needs the first three even for pure C++ builds; the rest are
# the libraries. Keep the Debian package list in tools/debian-packages.txt in
# step with this list.
_STAND_INS = [
    "rules_cc",
    "rules_java",
    "remote_coverage_tools",
    "com_google_absl",
    "com_googlesource_code_re2",
    "com_google_googletest",
    "com_github_google_benchmark",
    "com_github_kainjow_mustache",
    "com_github_yhirose_cpp_httplib",
    "com_github_nlohmann_json",
    "zlib",
]

def flamekit_dependencies(flamekit_path = "."):
    for name in _STAND_INS:
        if not native.existing_rule(name):
            native.local_repository(
                name = name,
                path = flamekit_path + "/third_party/" + name,
            )

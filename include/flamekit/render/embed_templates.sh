#!/usr/bin/env bash
# Writes flamekit/render/templates.h: every templates/*.mustache given on the
# command line as an `inline constexpr char k<Name>Template[]` raw string
# (flame_graph.html.mustache -> kFlameGraphHtmlTemplate), plus kTemplateFiles,
# a table from file name to text that RenderOptions::templates_dir overrides.
# Used by the genrule in BUILD.bazel:  embed_templates.sh OUT.h IN.mustache...
set -euo pipefail
out=$1
shift
delimiter=')FKTPL"'
{
  echo '// SPDX-License-Identifier: Apache-2.0'
  echo '// File: templates.h (GENERATED from templates/*.mustache by'
  echo '// include/flamekit/render/embed_templates.sh; do not edit)'
  echo '//'
  echo '// The mustache templates of the HTML and SVG renderers, embedded so a'
  echo '// vendored flamekit needs no files at run time. Constants only: safe'
  echo '// from any thread and any context.'
  echo
  echo '#ifndef FLAMEKIT_RENDER_TEMPLATES_H_'
  echo '#define FLAMEKIT_RENDER_TEMPLATES_H_'
  echo
  echo 'namespace flamekit {'
  echo
  echo 'struct EmbeddedTemplate {'
  echo '  const char* file_name;  // e.g. "flame_graph.html.mustache"'
  echo '  const char* text;'
  echo '};'
  echo
  names=()
  for f in "$@"; do
    base=$(basename "$f")
    if grep -qF "$delimiter" "$f"; then
      echo "embed_templates.sh: $f contains the raw-string delimiter $delimiter; rename it in the template" >&2
      exit 1
    fi
    stem=${base%.mustache}
    ident=k$(echo "$stem" | awk -F'[_.-]' '{ s = ""; for (i = 1; i <= NF; i++) s = s toupper(substr($i, 1, 1)) substr($i, 2); print s }')Template
    names+=("$base:$ident")
    printf 'inline constexpr char %s[] = R"FKTPL(' "$ident"
    cat "$f"
    printf ')FKTPL";\n\n'
  done
  echo 'inline constexpr EmbeddedTemplate kTemplateFiles[] = {'
  for pair in "${names[@]}"; do
    printf '    {"%s", %s},\n' "${pair%%:*}" "${pair#*:}"
  done
  echo '};'
  echo
  echo '}  // namespace flamekit'
  echo
  echo '#endif  // FLAMEKIT_RENDER_TEMPLATES_H_'
} > "$out"

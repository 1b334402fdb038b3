// SPDX-License-Identifier: Apache-2.0
// File: flame_tree.h
//
// FlameTree: a Profile's stacks merged into a prefix tree (the shape every
// flame graph draws), with nodes in preorder and children sorted by name,
// plus the text escapers the renderers share (JSON safe inside <script>,
// XML for SVG). Pure functions over const inputs: callable from many threads
// at once; never from a signal handler (they allocate).
//
// Example:
//
//   flamekit::FlameTree tree = flamekit::BuildFlameTree(profile, options);
//   for (const flamekit::FlameTree::Node& node : tree.nodes) {
//     // node.depth 0 is a root frame; tree.names[node.name] is its name
//   }

#ifndef FLAMEKIT_RENDER_FLAME_TREE_H_
#define FLAMEKIT_RENDER_FLAME_TREE_H_

#include <stddef.h>
#include <stdint.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "flamekit/profile/profile.h"
#include "flamekit/render/render_options.h"

namespace flamekit {

struct FlameTree {
  struct Node {
    uint32_t name = 0;    // index into names/kinds
    uint32_t depth = 0;   // 0 for a root frame
    uint64_t total = 0;   // samples in this frame and below (the new profile's in a diff)
    uint64_t before = 0;  // diff trees: the base profile's samples; else 0
  };
  // The name table, in order of first use in `nodes`; kinds[i] goes with
  // names[i] (the same name with two kinds is two entries).
  std::vector<std::string> names;
  std::vector<FrameKind> kinds;
  // Preorder: a node's children follow it, deeper by one, sorted by name.
  std::vector<Node> nodes;
  uint64_t total = 0;         // all samples (the new profile's in a diff)
  uint64_t total_before = 0;  // diff trees: all samples of the base profile
  uint32_t max_depth = 0;     // deepest node's depth + 1 (0 when empty)
  bool diff = false;
  // Nodes left out because they were narrower than minwidth.
  size_t pruned_nodes = 0;
};

// One stack for BuildFlameTree(): frame ids of `frames_of` root first.
struct FlameStackRef {
  absl::Span<const FrameId> frames;
  uint64_t after = 0;   // samples (the new profile's in a diff)
  uint64_t before = 0;  // diff only
};

// BuildFlameTree()
//
// Merges `stacks` (frame ids of `frames_of`) into a FlameTree; turns them
// leaf first when `reverse`; drops frames narrower than `minwidth_percent`
// of all samples (both profiles' widths count in a diff).
FlameTree BuildFlameTree(const Profile& frames_of,
                         std::vector<FlameStackRef> stacks, bool reverse,
                         double minwidth_percent, bool diff);

// BuildFlameTree()
//
// The tree of `profile`, with options.reverse and options.minwidth.
FlameTree BuildFlameTree(const Profile& profile, const RenderOptions& options);

// SubtreeEnd()
//
// The index one past node i's last descendant.
size_t SubtreeEnd(const FlameTree& tree, size_t i);

namespace render_internal {

// Appends `s` as a JSON string literal that is also safe inside an HTML
// <script> element: < > & are \u003c \u003e \u0026, U+2028/U+2029 are
// escaped, and bytes that are not UTF-8 become U+FFFD.
void AppendJsonString(std::string* out, absl::string_view s);

// Appends `s` escaped for XML text and attribute values; control characters
// XML forbids and bytes that are not UTF-8 become U+FFFD.
void AppendXmlEscaped(std::string* out, absl::string_view s);

// Appends the decimal digits of `v`.
void AppendUint(std::string* out, uint64_t v);

// The length of the valid UTF-8 sequence at s[0] (1-4), or 0 if invalid.
size_t Utf8SequenceLength(absl::string_view s);

// The node stream's digits: printable ASCII without " \\ < > & (so it is a
// JSON string needing no escapes, and safe inside <script>): base 90.
inline constexpr char kNodeAlphabet[] =
    " !#$%'()*+,-./0123456789:;=?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~";
inline constexpr uint32_t kNodeBase = 90;
static_assert(sizeof(kNodeAlphabet) - 1 == kNodeBase, "alphabet size");

// Appends the tree as compact JSON: {"names":[...],"kinds":[...],
// "name_width":W,"nodes":"..."}. `nodes` is a base-90 string, one record a
// node in preorder: a head digit h = pops_code + P * counts_code, where
// pops = previous depth + 1 - this depth (P-1 means "a long number
// follows"), P = 18 (3 in a diff); counts_code = the digit count (0-3, 4 =
// long) of the self samples (+ 5 * that of the base's self samples in a
// diff). Then the name index in W digits, then the self count(s). A long
// number is its digit count as one digit, then the digits. About 3 bytes a
// node: the page decodes it and sums totals.
void AppendFlameTreeJson(const FlameTree& tree, std::string* out);

}  // namespace render_internal

// Implementation details follow.

namespace render_internal {

inline size_t Utf8SequenceLength(absl::string_view s) {
  if (s.empty()) return 0;
  const unsigned char c = static_cast<unsigned char>(s[0]);
  if (c < 0x80) return 1;
  size_t len;
  uint32_t min;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    len = 2; min = 0x80; cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3; min = 0x800; cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4; min = 0x10000; cp = c & 0x07;
  } else {
    return 0;
  }
  if (s.size() < len) return 0;
  for (size_t i = 1; i < len; ++i) {
    const unsigned char cc = static_cast<unsigned char>(s[i]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

inline void AppendJsonString(std::string* out, absl::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    // Copy the run of characters that need nothing in one append.
    size_t run = i;
    while (run < s.size()) {
      const unsigned char c = static_cast<unsigned char>(s[run]);
      if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' ||
          c == '>' || c == '&') {
        break;
      }
      ++run;
    }
    out->append(s.data() + i, run - i);
    i = run;
    if (i >= s.size()) break;
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t len = Utf8SequenceLength(s.substr(i));
      if (len == 0) {
        out->append("\\ufffd");
        ++i;
        continue;
      }
      // U+2028 and U+2029 end a line in older JavaScript parsers.
      if (len == 3 && c == 0xE2 && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
          (static_cast<unsigned char>(s[i + 2]) == 0xA8 ||
           static_cast<unsigned char>(s[i + 2]) == 0xA9)) {
        out->append(static_cast<unsigned char>(s[i + 2]) == 0xA8 ? "\\u2028" : "\\u2029");
      } else {
        out->append(s.data() + i, len);
      }
      i += len;
      continue;
    }
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\t': out->append("\\t"); break;
      case '\r': out->append("\\r"); break;
      default:
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0xF]);
        break;
    }
    ++i;
  }
  out->push_back('"');
}

inline void AppendXmlEscaped(std::string* out, absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t len = Utf8SequenceLength(s.substr(i));
      if (len == 0) {
        out->append("\xEF\xBF\xBD");  // U+FFFD
        ++i;
      } else {
        out->append(s.data() + i, len);
        i += len;
      }
      continue;
    }
    switch (c) {
      case '&': out->append("&amp;"); break;
      case '<': out->append("&lt;"); break;
      case '>': out->append("&gt;"); break;
      case '"': out->append("&quot;"); break;
      case '\'': out->append("&apos;"); break;
      case '\t': case '\n': case '\r': out->push_back(static_cast<char>(c)); break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out->append("\xEF\xBF\xBD");
        } else {
          out->push_back(static_cast<char>(c));
        }
        break;
    }
    ++i;
  }
}

inline void AppendUint(std::string* out, uint64_t v) {
  char buf[24];
  std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, static_cast<size_t>(r.ptr - buf));
}

inline char NodeDigit(uint32_t v) { return kNodeAlphabet[v]; }

// Appends `v` as exactly `width` digits, most significant first.
inline void AppendNodeDigits(std::string* out, uint64_t v, int width) {
  char buf[16];
  for (int i = width - 1; i >= 0; --i) {
    buf[i] = NodeDigit(static_cast<uint32_t>(v % kNodeBase));
    v /= kNodeBase;
  }
  out->append(buf, static_cast<size_t>(width));
}

inline int NodeDigitCount(uint64_t v) {
  int n = 0;
  while (v > 0) {
    ++n;
    v /= kNodeBase;
  }
  return n;
}

// A number whose size is not known: one digit with its digit count, then
// the digits.
inline void AppendNodeLongNumber(std::string* out, uint64_t v) {
  int n = NodeDigitCount(v);
  out->push_back(NodeDigit(static_cast<uint32_t>(n)));
  AppendNodeDigits(out, v, n);
}

inline void AppendFlameTreeJson(const FlameTree& tree, std::string* out) {
  size_t name_bytes = 0;
  for (const std::string& name : tree.names) name_bytes += name.size() + 3;
  out->reserve(out->size() + name_bytes + tree.nodes.size() * (tree.diff ? 5 : 4) + 64);
  out->append("{\"names\":[");
  for (size_t i = 0; i < tree.names.size(); ++i) {
    if (i != 0) out->push_back(',');
    AppendJsonString(out, tree.names[i]);
  }
  out->append("],\"kinds\":[");
  for (size_t i = 0; i < tree.kinds.size(); ++i) {
    if (i != 0) out->push_back(',');
    AppendUint(out, static_cast<uint64_t>(tree.kinds[i]));
  }
  // Self counts, not totals: most frames have none, so most nodes are just
  // a head digit and the name.
  std::vector<uint64_t> self(tree.nodes.size()), self_before;
  if (tree.diff) self_before.resize(tree.nodes.size());
  {
    std::vector<size_t> open;
    for (size_t i = 0; i < tree.nodes.size(); ++i) {
      const FlameTree::Node& node = tree.nodes[i];
      open.resize(node.depth);
      self[i] = node.total;
      if (tree.diff) self_before[i] = node.before;
      if (!open.empty()) {
        self[open.back()] -= node.total;
        if (tree.diff) self_before[open.back()] -= node.before;
      }
      open.push_back(i);
    }
  }
  const int name_width = std::max(1, NodeDigitCount(tree.names.empty() ? 0 : tree.names.size() - 1));
  const uint32_t pops_codes = tree.diff ? kNodeBase / 25 : kNodeBase / 5;
  out->append("],\"alphabet\":\"");
  out->append(kNodeAlphabet);
  out->append("\",\"name_width\":");
  AppendUint(out, static_cast<uint64_t>(name_width));
  out->append(",\"nodes\":\"");
  auto length_code = [](uint64_t v) {
    int n = NodeDigitCount(v);
    return n <= 3 ? n : 4;
  };
  auto append_count = [out](uint64_t v, int code) {
    if (code < 4) {
      AppendNodeDigits(out, v, code);
    } else {
      AppendNodeLongNumber(out, v);
    }
  };
  uint32_t prev_depth_plus_one = 0;
  for (size_t i = 0; i < tree.nodes.size(); ++i) {
    const FlameTree::Node& node = tree.nodes[i];
    const uint32_t pops = prev_depth_plus_one - node.depth;
    const int code_after = length_code(self[i]);
    const int code_before = tree.diff ? length_code(self_before[i]) : 0;
    const uint32_t counts = static_cast<uint32_t>(code_after + (tree.diff ? 5 * code_before : 0));
    const uint32_t pops_code = std::min(pops, pops_codes - 1);
    out->push_back(NodeDigit(pops_code + pops_codes * counts));
    if (pops_code == pops_codes - 1) AppendNodeLongNumber(out, pops);
    AppendNodeDigits(out, node.name, name_width);
    append_count(self[i], code_after);
    if (tree.diff) append_count(self_before[i], code_before);
    prev_depth_plus_one = node.depth + 1;
  }
  out->append("\"}");
}

}  // namespace render_internal

inline size_t SubtreeEnd(const FlameTree& tree, size_t i) {
  const uint32_t depth = tree.nodes[i].depth;
  size_t end = i + 1;
  while (end < tree.nodes.size() && tree.nodes[end].depth > depth) ++end;
  return end;
}

inline FlameTree BuildFlameTree(const Profile& frames_of,
                                std::vector<FlameStackRef> stacks, bool reverse,
                                double minwidth_percent, bool diff) {
  FlameTree tree;
  tree.diff = diff;
  std::vector<std::vector<FrameId>> reversed;
  if (reverse) {
    reversed.reserve(stacks.size());
    for (FlameStackRef& stack : stacks) {
      reversed.emplace_back(stack.frames.rbegin(), stack.frames.rend());
      stack.frames = absl::MakeConstSpan(reversed.back());
    }
  }
  for (const FlameStackRef& stack : stacks) {
    tree.total += stack.after;
    tree.total_before += stack.before;
  }
  // Sorted by frame names, equal prefixes are neighbours: one pass merges.
  std::sort(stacks.begin(), stacks.end(),
            [&frames_of](const FlameStackRef& a, const FlameStackRef& b) {
              size_t n = std::min(a.frames.size(), b.frames.size());
              for (size_t i = 0; i < n; ++i) {
                if (a.frames[i] == b.frames[i]) continue;
                const Frame& x = frames_of.frame(a.frames[i]);
                const Frame& y = frames_of.frame(b.frames[i]);
                int c = x.name.compare(y.name);
                if (c != 0) return c < 0;
                return x.kind < y.kind;
              }
              return a.frames.size() < b.frames.size();
            });
  // While building, Node::name holds the frame id.
  std::vector<FlameTree::Node> nodes;
  std::vector<size_t> path;
  absl::Span<const FrameId> previous;
  for (const FlameStackRef& stack : stacks) {
    if (stack.frames.empty() || (stack.after == 0 && stack.before == 0)) continue;
    size_t common = 0;
    size_t limit = std::min({previous.size(), stack.frames.size(), path.size()});
    while (common < limit && previous[common] == stack.frames[common]) ++common;
    path.resize(common);
    for (size_t d = common; d < stack.frames.size(); ++d) {
      FlameTree::Node node;
      node.name = stack.frames[d];
      node.depth = static_cast<uint32_t>(d);
      path.push_back(nodes.size());
      nodes.push_back(node);
    }
    for (size_t index : path) {
      nodes[index].total += stack.after;
      nodes[index].before += stack.before;
    }
    previous = stack.frames;
  }
  // Prune narrow subtrees and give the survivors name-table indices.
  const double width_total =
      static_cast<double>(std::max(tree.total, tree.total_before));
  const double threshold = minwidth_percent > 0 ? width_total * minwidth_percent / 100.0 : 0;
  std::vector<uint32_t> name_index(frames_of.frame_count(),
                                   std::numeric_limits<uint32_t>::max());
  tree.nodes.reserve(nodes.size());
  uint32_t skip_below = std::numeric_limits<uint32_t>::max();
  for (const FlameTree::Node& node : nodes) {
    if (skip_below != std::numeric_limits<uint32_t>::max()) {
      if (node.depth > skip_below) {
        ++tree.pruned_nodes;
        continue;
      }
      skip_below = std::numeric_limits<uint32_t>::max();
    }
    if (threshold > 0 &&
        static_cast<double>(std::max(node.total, node.before)) < threshold) {
      skip_below = node.depth;
      ++tree.pruned_nodes;
      continue;
    }
    FlameTree::Node kept = node;
    uint32_t& index = name_index[node.name];
    if (index == std::numeric_limits<uint32_t>::max()) {
      index = static_cast<uint32_t>(tree.names.size());
      const Frame& frame = frames_of.frame(node.name);
      tree.names.push_back(frame.name);
      tree.kinds.push_back(frame.kind);
    }
    kept.name = index;
    tree.max_depth = std::max(tree.max_depth, node.depth + 1);
    tree.nodes.push_back(kept);
  }
  return tree;
}

inline FlameTree BuildFlameTree(const Profile& profile, const RenderOptions& options) {
  std::vector<FlameStackRef> stacks;
  stacks.reserve(profile.stack_count());
  for (size_t i = 0; i < profile.stack_count(); ++i) {
    stacks.push_back(FlameStackRef{profile.stack(i), profile.stack_count_at(i), 0});
  }
  return BuildFlameTree(profile, std::move(stacks), options.reverse,
                        options.minwidth, /*diff=*/false);
}

}  // namespace flamekit

#endif  // FLAMEKIT_RENDER_FLAME_TREE_H_

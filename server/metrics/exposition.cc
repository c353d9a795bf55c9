#include "server/metrics/exposition.h"

#include <charconv>
#include <cmath>
#include <limits>

namespace taskwire::server::metrics {
namespace {

void append_escaped(std::string& out, const std::string& text, bool quotes) {
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quotes && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

// `{a="x",b="y"}`, with `extra` (already formatted, such as `le="0.5"`)
// last; nothing when there are no labels at all.
void append_labels(std::string& out, const std::vector<std::string>& names,
                   const LabelValues& values, const std::string& extra = {}) {
  if (names.empty() && extra.empty()) return;
  out += '{';
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += names[i];
    out += "=\"";
    append_escaped(out, values[i], true);
    out += '"';
  }
  if (!extra.empty()) {
    if (!names.empty()) out += ',';
    out += extra;
  }
  out += '}';
}

void append_header(std::string& out, const std::string& name, const std::string& help,
                   const char* type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  append_escaped(out, help, false);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void append_sample(std::string& out, const std::string& name, const char* suffix,
                   const std::vector<std::string>& names, const LabelValues& values,
                   const std::string& value, const std::string& extra = {}) {
  out += name;
  out += suffix;
  append_labels(out, names, values, extra);
  out += ' ';
  out += value;
  out += '\n';
}

void render(std::string& out, const Family<Counter>& family) {
  append_header(out, family.name(), family.help(), "counter");
  for (const auto& child : family.children()) {
    append_sample(out, family.name(), "", family.label_names(), child.labels,
                  std::to_string(child.metric.value()));
  }
}

void render(std::string& out, const Family<Gauge>& family) {
  append_header(out, family.name(), family.help(), "gauge");
  for (const auto& child : family.children()) {
    append_sample(out, family.name(), "", family.label_names(), child.labels,
                  format_value(child.metric.value()));
  }
}

void render(std::string& out, const Family<Histogram>& family) {
  append_header(out, family.name(), family.help(), "histogram");
  for (const auto& child : family.children()) {
    const Histogram& histogram = child.metric;
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < histogram.counts().size(); ++i) {
      cumulative += histogram.counts()[i];
      std::string le = "le=\"";
      le += i < histogram.bounds().size() ? format_value(histogram.bounds()[i]) : "+Inf";
      le += '"';
      append_sample(out, family.name(), "_bucket", family.label_names(), child.labels,
                    std::to_string(cumulative), le);
    }
    append_sample(out, family.name(), "_sum", family.label_names(), child.labels,
                  format_value(histogram.sum()));
    append_sample(out, family.name(), "_count", family.label_names(), child.labels,
                  std::to_string(histogram.count()));
  }
}

}  // namespace

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char text[32];
  auto [end, error] = std::to_chars(text, text + sizeof text, value);
  return std::string(text, end);
}

std::string render_text(const Registry& registry) {
  registry.collect();
  std::string out;
  for (const auto& family : registry.families()) {
    std::visit([&out](const auto* f) { render(out, *f); }, family);
  }
  return out;
}

}  // namespace taskwire::server::metrics

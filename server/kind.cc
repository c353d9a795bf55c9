#include "server/kind.h"

namespace taskwire::server {

void KindRegistry::add(std::unique_ptr<Kind> kind) {
  std::string name(kind->name());
  kinds_[std::move(name)] = std::move(kind);
}

Kind* KindRegistry::find(std::string_view name) const {
  auto it = kinds_.find(name);
  return it == kinds_.end() ? nullptr : it->second.get();
}

std::string KindRegistry::names() const {
  std::string names;
  for (const auto& [name, kind] : kinds_) {
    if (!names.empty()) names += ", ";
    names += name;
  }
  return names;
}

}  // namespace taskwire::server

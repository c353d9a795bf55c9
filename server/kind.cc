#include "server/kind.h"

#include <set>

namespace taskwire::server {

void KindRegistry::add(std::unique_ptr<Kind> kind) {
  std::string name(kind->name());
  kinds_[std::move(name)] = std::move(kind);
}

Kind* KindRegistry::find(std::string_view name) const {
  auto it = kinds_.find(name);
  if (it != kinds_.end()) return it->second.get();
  return fallback_ == nullptr ? nullptr : fallback_->find(name);
}

std::string KindRegistry::names() const {
  std::set<std::string> all;
  for (const auto& [name, kind] : kinds_) all.insert(name);
  if (fallback_ != nullptr) {
    for (std::string& name : fallback_->names()) all.insert(std::move(name));
  }
  std::string names;
  for (const std::string& name : all) {
    if (!names.empty()) names += ", ";
    names += name;
  }
  return names;
}

}  // namespace taskwire::server

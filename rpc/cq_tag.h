#pragma once

namespace taskwire::rpc {

// What a completion-queue tag points at: the object that continues once
// gRPC completes the operation. Runs on the loop thread (CqPoller).
class CqTag {
 public:
  virtual void on_event(bool ok) = 0;

 protected:
  ~CqTag() = default;
};

// A tag that calls a member function of its owner, so that one call object
// can have a tag per kind of operation.
template <typename Owner, void (Owner::*kOnEvent)(bool)>
class MemberTag final : public CqTag {
 public:
  explicit MemberTag(Owner* owner) : owner_(owner) {}
  void on_event(bool ok) override { (owner_->*kOnEvent)(ok); }

 private:
  Owner* owner_;
};

}  // namespace taskwire::rpc

#include "yilian/net/limits.h"

#include <algorithm>

namespace yilian::net {

KeyedSlots::Slot::~Slot() {
  if (!state_) return;  // moved from
  std::lock_guard lock(state_->mu);
  auto it = state_->used.find(key_);
  if (it != state_->used.end() && --it->second == 0) state_->used.erase(it);
}

std::optional<KeyedSlots::Slot> KeyedSlots::try_acquire(const std::string& key) {
  std::lock_guard lock(state_->mu);
  std::size_t& n = state_->used[key];
  if (state_->max > 0 && n >= state_->max) return std::nullopt;
  ++n;
  return Slot(state_, key);
}

std::size_t KeyedSlots::in_use(const std::string& key) const {
  std::lock_guard lock(state_->mu);
  auto it = state_->used.find(key);
  return it == state_->used.end() ? 0 : it->second;
}

bool TokenBucket::take(TimePoint now) {
  if (rate_ <= 0) return true;
  if (last_ && now > *last_) {
    const double elapsed = std::chrono::duration<double>(now - *last_).count();
    tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
  }
  if (!last_ || now > *last_) last_ = now;
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

}  // namespace yilian::net

// Limits that keep one client from starving the others (pure logic, no I/O; the caller passes
// the time). KeyedSlots: at most N at once per key (renders or uploads of one user).
// TokenBucket: a sustained rate with a burst (WebSocket messages of one connection).
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace yilian::net {

class KeyedSlots {
  struct State {
    mutable std::mutex mu;
    std::size_t max = 0;
    std::map<std::string, std::size_t> used;  // keys with at least one slot held
  };

 public:
  // `max_per_key` 0: no limit.
  explicit KeyedSlots(std::size_t max_per_key) : state_(std::make_shared<State>()) {
    state_->max = max_per_key;
  }

  // Held while the work runs; the slot is given back when it is destroyed.
  class Slot {
   public:
    Slot(Slot&& o) noexcept : state_(std::move(o.state_)), key_(std::move(o.key_)) {}
    Slot& operator=(Slot&&) = delete;
    Slot(const Slot&) = delete;
    ~Slot();

   private:
    friend class KeyedSlots;
    Slot(std::shared_ptr<State> s, std::string key) : state_(std::move(s)), key_(std::move(key)) {}
    std::shared_ptr<State> state_;
    std::string key_;
  };

  // A slot for `key`, or nothing when `key` already holds its maximum. Thread-safe.
  std::optional<Slot> try_acquire(const std::string& key);
  std::size_t in_use(const std::string& key) const;
  std::size_t max_per_key() const { return state_->max; }

 private:
  std::shared_ptr<State> state_;  // shared with the slots, so that a slot may outlive this
};

class TokenBucket {
 public:
  using TimePoint = std::chrono::system_clock::time_point;
  // `rate` tokens a second, at most `burst` saved up; starts full. rate 0: no limit.
  TokenBucket(double rate, double burst) : rate_(rate), burst_(burst), tokens_(burst) {}
  // Takes one token at `now`; false when none is left.
  bool take(TimePoint now);

 private:
  double rate_, burst_, tokens_;
  std::optional<TimePoint> last_;
};

}  // namespace yilian::net

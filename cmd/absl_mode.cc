// absl_mode.cc - see absl_mode.h. crisp's one C++ file: abseil has no C API.
#include "cmd/absl_mode.h"

#include <absl/synchronization/mutex.h>

void absl_lock_graph_off(void)
{
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

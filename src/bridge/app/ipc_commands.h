// `bridge ipc cat|validate|to-json` and the Arrow output of `bridge query`.
#pragma once

#include <string>

#include "bridge/arrow/compression.h"
#include "bridge/common/status.h"
#include "bridge/engine/engine.h"

namespace bridge::app {

enum class IpcCommand { kCat, kValidate, kToJson };

// Runs `command` on the IPC stream or file at `path` ("-" = stdin; a file is recognised by
// its ARROW1 magic) and returns the exit code: 0 success, 1 invalid input (with the reason
// on stderr), 2 when the input cannot be read.
int RunIpcCommand(IpcCommand command, const std::string& path);

// Writes `stream` to stdout as an Arrow IPC stream with `codec` body compression.
Status WriteArrowStream(engine::BatchStream& stream, ipc::Codec codec);

}  // namespace bridge::app

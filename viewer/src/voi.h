// The VOI choice every rendering path makes for a grey-scale DicomImage.
#pragma once

#include <optional>

#include "yilian/viewer/render.h"

class DicomImage;

namespace yilian::viewer {

// An explicit window, else the object's first window, else its first VOI LUT, else the
// min/max of the pixel values.
void apply_voi(DicomImage& image, const std::optional<Window>& window);

}  // namespace yilian::viewer

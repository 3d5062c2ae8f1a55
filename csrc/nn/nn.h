/* nn.h - the layer kernels: one forward/backward pair per layer kind.
 *
 * Contract for every kernel here:
 *  - raw float32 buffers, row-major, contiguous; sizes are int64_t;
 *  - shapes are validated by the caller (binding or model code): kernels
 *    trust their arguments and never allocate, print or fail, except where a
 *    signature returns int (those take an mm_err);
 *  - gradients of INPUTS (gx, ...) are overwritten (=);
 *    gradients of PARAMETERS (gw, gb) are accumulated (+=), so several
 *    batches or several uses of one weight add up;
 *  - any gradient pointer may be NULL: that gradient is not computed;
 *  - labels are 0-based int64 in C (the Lua face is 1-based);
 *  - modality masks are uint8 (1 = present, 0 = missing).
 * Each layer kind has its own header and file (linear.h / linear.c, ...);
 * this header includes them all, for callers that use many.
 */
#ifndef MM_NN_H
#define MM_NN_H

#include "activation.h"
#include "batchnorm.h"
#include "conv2d.h"
#include "cosine.h"
#include "dropout.h"
#include "embedding_bag.h"
#include "fusion.h"
#include "linear.h"
#include "loss.h"
#include "margin.h"
#include "optim.h"
#include "pool2d.h"
#include "ranking.h"
#include "softmax.h"

#endif

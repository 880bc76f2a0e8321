// The mobility-header codec: include this for everything.
#pragma once

#include "hag/mh/codec.hpp"
#include "hag/mh/constants.hpp"
#include "hag/mh/errors.hpp"
#include "hag/mh/messages.hpp"
#include "hag/mh/options.hpp"

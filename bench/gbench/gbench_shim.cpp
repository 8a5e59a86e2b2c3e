// SPDX-License-Identifier: BSD-2-Clause
// gbench_shim.cpp - the C++ side of gbench_shim.h: Google Benchmark 1.7.1 behind a C interface.
//
// Every extern "C" function is noexcept and catches what it can throw, so no exception unwinds
// into C frames; arguments Google Benchmark would abort on (its BM_CHECK) are refused here with
// NULL instead. The per-iteration fast path (State::KeepRunningBatch) is inline in benchmark.h
// and compiled into this file, so C pays one call per batch, not per operation.
#include "gbench_shim.h"

#include <benchmark/benchmark.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace
{

// A cyclic barrier for the threads of one run. Thread 0 sizes it before it reaches Google
// Benchmark's start barrier, and the others can only use it after passing that barrier.
class RunBarrier
{
  public:
    void reset(int count)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        count_ = count;
        waiting_ = 0;
    }
    void wait()
    {
        std::unique_lock<std::mutex> lock(mutex_);
        unsigned long generation = generation_;
        if (++waiting_ >= count_) {
            waiting_ = 0;
            generation_++;
            cv_.notify_all();
            return;
        }
        cv_.wait(lock, [&] { return generation != generation_; });
    }

  private:
    std::mutex mutex_;
    std::condition_variable cv_;
    int count_ = 1, waiting_ = 0;
    unsigned long generation_ = 0;
};

struct Family {
    gb_fn *fn;
    void *arg;
    int arg_count = -1; // -1: no gb_args/gb_arg_names yet (Google Benchmark's ArgsCnt rule)
    RunBarrier barrier;
};

} // namespace

struct gb_bench {
    benchmark::internal::Benchmark *bench;
    std::shared_ptr<Family> family;
    bool has_min_time = false, has_iterations = false;
};

struct gb_state {
    benchmark::State *state;
    Family *family;
};

namespace
{

std::vector<std::unique_ptr<gb_bench>> &registry()
{
    static std::vector<std::unique_ptr<gb_bench>> benches;
    return benches;
}

// ComputeStatistics takes a plain function pointer without user data: a few fixed trampolines,
// each bound to one C function.
constexpr int kStatSlots = 8;
gb_stat_fn *stat_slots[kStatSlots];

template <int I> double stat_trampoline(const std::vector<double> &v)
{
    return stat_slots[I](v.data(), v.size());
}

benchmark::StatisticsFunc *const stat_trampolines[kStatSlots] = {
    stat_trampoline<0>, stat_trampoline<1>, stat_trampoline<2>, stat_trampoline<3>,
    stat_trampoline<4>, stat_trampoline<5>, stat_trampoline<6>, stat_trampoline<7>};

benchmark::StatisticsFunc *stat_for(gb_stat_fn *fn)
{
    for (int i = 0; i < kStatSlots; i++) {
        if (stat_slots[i] == fn)
            return stat_trampolines[i];
        if (!stat_slots[i]) {
            stat_slots[i] = fn;
            return stat_trampolines[i];
        }
    }
    return nullptr;
}

benchmark::State &S(gb_state *st)
{
    return *st->state;
}

const benchmark::State &S(const gb_state *st)
{
    return *st->state;
}

} // namespace

extern "C" gb_bench *gb_register(const char *name, gb_fn *fn, void *arg) noexcept
{
    if (!name || !fn)
        return nullptr;
    try {
        auto family = std::make_shared<Family>();
        family->fn = fn;
        family->arg = arg;
        auto b = std::make_unique<gb_bench>();
        b->family = family;
        b->bench = benchmark::RegisterBenchmark(name, [family](benchmark::State &state) {
            gb_state st{&state, family.get()};
            if (state.thread_index() == 0)
                family->barrier.reset(state.threads());
            family->fn(&st, family->arg);
        });
        registry().push_back(std::move(b));
        return registry().back().get();
    } catch (...) {
        return nullptr;
    }
}

extern "C" gb_bench *gb_args(gb_bench *b, const int64_t *values, size_t n) noexcept
{
    if (!b || (!values && n) || (b->family->arg_count >= 0 && (size_t)b->family->arg_count != n))
        return nullptr;
    try {
        b->bench->Args(std::vector<int64_t>(values, values + n));
        b->family->arg_count = (int)n;
        return b;
    } catch (...) {
        return nullptr;
    }
}

extern "C" gb_bench *gb_arg_names(gb_bench *b, const char *const *names, size_t n) noexcept
{
    if (!b || (!names && n) || (b->family->arg_count >= 0 && (size_t)b->family->arg_count != n))
        return nullptr;
    try {
        std::vector<std::string> v;
        for (size_t i = 0; i < n; i++)
            v.emplace_back(names[i] ? names[i] : "");
        b->bench->ArgNames(v);
        b->family->arg_count = (int)n;
        return b;
    } catch (...) {
        return nullptr;
    }
}

extern "C" gb_bench *gb_threads(gb_bench *b, int threads) noexcept
{
    if (!b || threads < 1)
        return nullptr;
    try {
        b->bench->Threads(threads);
        return b;
    } catch (...) {
        return nullptr;
    }
}

extern "C" gb_bench *gb_use_real_time(gb_bench *b) noexcept
{
    if (!b)
        return nullptr;
    b->bench->UseRealTime();
    return b;
}

extern "C" gb_bench *gb_min_time(gb_bench *b, double seconds) noexcept
{
    if (!b || !(seconds > 0) || b->has_iterations)
        return nullptr;
    b->bench->MinTime(seconds);
    b->has_min_time = true;
    return b;
}

extern "C" gb_bench *gb_iterations(gb_bench *b, int64_t n) noexcept
{
    if (!b || n < 1 || b->has_min_time)
        return nullptr;
    b->bench->Iterations(n);
    b->has_iterations = true;
    return b;
}

extern "C" gb_bench *gb_repetitions(gb_bench *b, int n) noexcept
{
    if (!b || n < 1)
        return nullptr;
    b->bench->Repetitions(n);
    return b;
}

extern "C" gb_bench *gb_time_unit(gb_bench *b, enum gb_time_unit unit) noexcept
{
    if (!b)
        return nullptr;
    switch (unit) {
    case GB_NS: b->bench->Unit(benchmark::kNanosecond); break;
    case GB_US: b->bench->Unit(benchmark::kMicrosecond); break;
    case GB_MS: b->bench->Unit(benchmark::kMillisecond); break;
    case GB_S: b->bench->Unit(benchmark::kSecond); break;
    default: return nullptr;
    }
    return b;
}

extern "C" gb_bench *gb_statistic(gb_bench *b, const char *name, gb_stat_fn *fn,
                                  enum gb_stat_unit unit) noexcept
{
    if (!b || !name || !fn || (unit != GB_STAT_TIME && unit != GB_STAT_PERCENTAGE))
        return nullptr;
    benchmark::StatisticsFunc *trampoline = stat_for(fn);
    if (!trampoline)
        return nullptr;
    try {
        b->bench->ComputeStatistics(
            name, trampoline, unit == GB_STAT_TIME ? benchmark::kTime : benchmark::kPercentage);
        return b;
    } catch (...) {
        return nullptr;
    }
}

extern "C" int64_t gb_range(const gb_state *st, size_t i) noexcept
{
    if (st->family->arg_count < 0 || i >= (size_t)st->family->arg_count)
        return 0;
    return S(st).range(i);
}

extern "C" int gb_thread_index(const gb_state *st) noexcept
{
    return S(st).thread_index();
}

extern "C" int gb_thread_count(const gb_state *st) noexcept
{
    return S(st).threads();
}

extern "C" int64_t gb_max_iterations(const gb_state *st) noexcept
{
    return S(st).max_iterations;
}

extern "C" bool gb_keep_running_batch(gb_state *st, int64_t n) noexcept
{
    return S(st).KeepRunningBatch(n < 1 ? 1 : n);
}

extern "C" void gb_pause_timing(gb_state *st) noexcept
{
    S(st).PauseTiming();
}

extern "C" void gb_resume_timing(gb_state *st) noexcept
{
    S(st).ResumeTiming();
}

extern "C" void gb_barrier(gb_state *st) noexcept
{
    try {
        st->family->barrier.wait();
    } catch (...) {
        // A thread that cannot synchronise would let the others run on shared state it has
        // not finished with: stop here.
        std::fputs("gbench_shim: barrier failed\n", stderr);
        std::abort();
    }
}

extern "C" void gb_skip_with_error(gb_state *st, const char *msg) noexcept
{
    try {
        S(st).SkipWithError(msg ? msg : "error");
    } catch (...) {
        // A message of under 16 characters needs no allocation (std::string's small buffer).
        S(st).SkipWithError("out of memory");
    }
}

extern "C" bool gb_error_occurred(const gb_state *st) noexcept
{
    return S(st).error_occurred();
}

extern "C" void gb_counter(gb_state *st, const char *name, double value, unsigned flags) noexcept
{
    if (!name)
        return;
    // Mapped bit by bit: the C values are not Google Benchmark's.
    int f = benchmark::Counter::kDefaults;
    if (flags & GB_RATE)
        f |= benchmark::Counter::kIsRate;
    if (flags & GB_AVG_THREADS)
        f |= benchmark::Counter::kAvgThreads;
    if (flags & GB_ITER_INVARIANT)
        f |= benchmark::Counter::kIsIterationInvariant;
    if (flags & GB_AVG_ITERS)
        f |= benchmark::Counter::kAvgIterations;
    if (flags & GB_INVERT)
        f |= benchmark::Counter::kInvert;
    try {
        S(st).counters[name] = benchmark::Counter(value, static_cast<benchmark::Counter::Flags>(f));
    } catch (...) {
        // out of memory: the counter is dropped
    }
}

extern "C" void gb_set_label(gb_state *st, const char *label) noexcept
{
    try {
        S(st).SetLabel(label ? label : "");
    } catch (...) {
        // out of memory: no label
    }
}

extern "C" void gb_initialize(int *argc, char **argv) noexcept
{
    try {
        benchmark::Initialize(argc, argv);
    } catch (...) {
        std::fputs("gbench_shim: Initialize failed\n", stderr);
        std::exit(2);
    }
}

extern "C" bool gb_report_unrecognized(int argc, char **argv) noexcept
{
    try {
        return benchmark::ReportUnrecognizedArguments(argc, argv);
    } catch (...) {
        return true;
    }
}

extern "C" void gb_add_context(const char *key, const char *value) noexcept
{
    if (!key || !value)
        return;
    try {
        benchmark::AddCustomContext(key, value);
    } catch (...) {
        // out of memory: the context entry is dropped
    }
}

extern "C" size_t gb_run_specified(void) noexcept
{
    try {
        return benchmark::RunSpecifiedBenchmarks();
    } catch (const std::exception &e) {
        std::fprintf(stderr, "gbench_shim: %s\n", e.what());
    } catch (...) {
        std::fputs("gbench_shim: RunSpecifiedBenchmarks failed\n", stderr);
    }
    return 0;
}

extern "C" void gb_shutdown(void) noexcept
{
    try {
        benchmark::Shutdown();
    } catch (...) {
        // nothing left to release
    }
}

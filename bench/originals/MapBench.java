// SPDX-License-Identifier: BSD-2-Clause
import java.util.Collections;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * MapBench - the child process of chmbench's java:* peers: one fork of one mix trial on
 * ConcurrentHashMap (java:chm), Collections.synchronizedMap(new HashMap()) (java:sync) or a
 * HashMap behind a ReentrantReadWriteLock (java:rwlock). bench/originals/originals.c starts it
 * with the trial as name=value arguments and reads the lines it prints (the protocol is there).
 *
 * It draws exactly the operations chmbench's mix.c draws for the same seed (the same xorshift64,
 * splitmix64 and Zipf generator, ported; --dump-keys compares them) and runs JMH's synchronized
 * iterations as bench/runner.c does: every thread runs uncounted until all have started,
 * measures itself until the common deadline, runs uncounted until all have stopped.
 *
 * sampleEvery=N (chmbench -bm sample, with loop=preset): in the measured part of every iteration
 * each thread times every Nth operation alone with System.nanoTime (drawn first, then the map
 * call between the two reads) into a Histogram of its own per kind, laid out as chmbench's
 * bench/histogram.c; after each measured iteration they are merged and sent as "latency I KIND
 * HISTOGRAM" lines, after a "timer OVERHEAD_NS GRANULARITY_NS nanoTime" line once per run.
 * --self-test checks the ported bucket function and text form against values C computed.
 */
public final class MapBench {
    static final int ZIPF_STREAM_LENGTH = 1 << 16; /* per thread, as mix.c */
    static final int BATCH = 64;                   /* operations between checks of the flags */
    static final int GET = 0, PUT = 1, REMOVE = 2, UPDATE = 3;
    static final String[] KIND_NAMES = {"get", "put", "remove", "update"};
    static final String CLOCK_NAME = "nanoTime"; /* the sampleTimer clock chmbench reports */
    static final int TIMER_PAIRS = 1001;         /* timer.c's OVERHEAD_PAIRS */

    // ---- -bm sample: bench/histogram.c's histogram, ported exactly ----------------------------

    static final int HIST_SUB_BITS = 5;                                /* BENCH_HIST_SUB_BITS */
    static final int HIST_BUCKETS = (65 - HIST_SUB_BITS) << HIST_SUB_BITS; /* 1920 */

    /** bench_histogram_index, bit for bit; ps is unsigned (2^64 - 1 goes to the last bucket). */
    static int histogramIndex(long ps) {
        int msb = 63 - Long.numberOfLeadingZeros(ps | 1);
        int shift = msb > HIST_SUB_BITS ? msb - HIST_SUB_BITS : 0;
        return (shift << HIST_SUB_BITS) + (int) (ps >>> shift);
    }

    /**
     * bench_histogram: log-linear, values in picoseconds (unsigned), below 64 a bucket each,
     * every power of two above split into 32 buckets; count, min, max, sum and sum of squares
     * exact.
     */
    static final class Histogram {
        long count, min = -1, max; /* min, max unsigned; min is 2^64 - 1 while empty */
        double sum, sumSquares;
        final long[] buckets = new long[HIST_BUCKETS];

        void reset() {
            count = max = 0;
            min = -1;
            sum = sumSquares = 0;
            java.util.Arrays.fill(buckets, 0);
        }

        /** bench_histogram_record (values below 2^63: a duration's ps). */
        void record(long ps) {
            buckets[histogramIndex(ps)]++;
            count++;
            sum += (double) ps;
            sumSquares += (double) ps * (double) ps;
            if (Long.compareUnsigned(ps, min) < 0)
                min = ps;
            if (Long.compareUnsigned(ps, max) > 0)
                max = ps;
        }

        /** bench_histogram_merge. */
        void merge(Histogram from) {
            if (from.count == 0)
                return;
            count += from.count;
            sum += from.sum;
            sumSquares += from.sumSquares;
            if (Long.compareUnsigned(from.min, min) < 0)
                min = from.min;
            if (Long.compareUnsigned(from.max, max) > 0)
                max = from.max;
            for (int i = 0; i < HIST_BUCKETS; i++)
                buckets[i] += from.buckets[i];
        }

        /**
         * bench_histogram_write: "COUNT MIN MAX SUM SUM_SQUARES INDEX:N ..." (the non-empty
         * buckets); the sums in Java's shortest form that reads back as the same double.
         */
        StringBuilder appendText(StringBuilder b) {
            b.append(Long.toUnsignedString(count)).append(' ').append(Long.toUnsignedString(min))
                    .append(' ').append(Long.toUnsignedString(max)).append(' ').append(sum)
                    .append(' ').append(sumSquares);
            for (int i = 0; i < HIST_BUCKETS; i++)
                if (buckets[i] != 0)
                    b.append(' ').append(i).append(':').append(Long.toUnsignedString(buckets[i]));
            return b;
        }
    }

    static long median(long[] x) {
        java.util.Arrays.sort(x);
        return x[x.length / 2];
    }

    /**
     * timer.c's bench_timer_calibrate for System.nanoTime: {overhead of a start/stop pair (median
     * of 1001 back-to-back pairs), granularity (median step when it moves)}, in ns. Repeated for
     * 20 ms and the last round kept: the first rounds run in the interpreter, the last compiled.
     */
    static long[] calibrateClock() {
        long[] pairs = new long[TIMER_PAIRS];
        long overhead = 0, granularity = 0, end = System.nanoTime() + 20_000_000L;
        for (int round = 0; round < 3 || System.nanoTime() < end; round++) {
            for (int i = 0; i < TIMER_PAIRS; i++) {
                long start = System.nanoTime();
                long stop = System.nanoTime();
                pairs[i] = stop - start;
            }
            overhead = median(pairs);
            for (int i = 0; i < TIMER_PAIRS; i++) {
                long first = System.nanoTime(), next;
                while ((next = System.nanoTime()) == first)
                    ;
                pairs[i] = next - first;
            }
            granularity = median(pairs);
        }
        return new long[] {overhead, granularity};
    }

    /** --self-test: the ported histogram against what chmbench's C code computes. */
    static int selfTest() {
        /* (value, bucket) pairs from bench_histogram_index (bench/chmbench.h) */
        long[][] cBuckets = {{0, 0}, {1, 1}, {2, 2}, {31, 31}, {32, 32}, {63, 63},
            {64, 64}, {65, 64}, {66, 65}, {127, 95}, {128, 96}, {129, 96},
            {1000, 190}, {1023, 191}, {1024, 192}, {1055, 192}, {1056, 193},
            {20000, 327}, {999999, 509}, {1000000, 509}, {123456789, 730},
            {(1L << 40) + 12345, 1152}, {Long.MAX_VALUE, 1887}, {-1L /* 2^64 - 1 */, 1919}};
        int failed = 0, checks = 0;
        for (long[] c : cBuckets) {
            checks++;
            if (histogramIndex(c[0]) != c[1]) {
                System.out.println("self-test failed: histogramIndex(" + Long.toUnsignedString(c[0])
                                   + ") = " + histogramIndex(c[0]) + ", C says " + c[1]);
                failed++;
            }
        }
        Histogram h = new Histogram();
        String[][] texts = {{"0 18446744073709551615 0 0.0 0.0", null},
            /* C: "3 1000 123456789 123477789 15241579151190520 190:1 327:1 730:1" (%.17g) */
            {"3 1000 123456789 1.23477789E8 1.524157915119052E16 190:1 327:1 730:1", null}};
        for (int t = 0; t < texts.length; t++) {
            if (t == 1)
                for (long ps : new long[] {1000, 20000, 123456789})
                    h.record(ps);
            String got = h.appendText(new StringBuilder()).toString();
            checks++;
            if (!got.equals(texts[t][0])) {
                System.out.println("self-test failed: text '" + got + "', want '" + texts[t][0] + "'");
                failed++;
            }
        }
        Histogram merged = new Histogram();
        merged.merge(h);
        merged.merge(h);
        checks++;
        if (merged.count != 6 || merged.min != 1000 || merged.max != 123456789 || merged.buckets[327] != 2) {
            System.out.println("self-test failed: merge");
            failed++;
        }
        checks++;
        if (HIST_BUCKETS != 1920) {
            System.out.println("self-test failed: " + HIST_BUCKETS + " buckets, C has 1920");
            failed++;
        }
        System.out.println(failed == 0 ? "self-test ok " + checks + " checks"
                                       : "self-test: " + failed + " of " + checks + " failed");
        return failed == 0 ? 0 : 1;
    }

    /** What mix does to a map; keys and values are Longs. */
    interface BenchMap {
        Long get(Long key);

        boolean put(Long key, Long value); /* true: the key was new */

        boolean remove(Long key); /* true: the key was present */

        boolean update(Long key, Long value); /* sets the value only if present, atomically */

        int size();
    }

    /** java:chm, presized (its constructor sizes the table for that many entries). */
    static final class Chm implements BenchMap {
        private final ConcurrentHashMap<Long, Long> map;

        Chm(int capacity) {
            map = new ConcurrentHashMap<>(capacity);
        }

        public Long get(Long key) {
            return map.get(key);
        }

        public boolean put(Long key, Long value) {
            return map.put(key, value) == null;
        }

        public boolean remove(Long key) {
            return map.remove(key) != null;
        }

        public boolean update(Long key, Long value) {
            return map.replace(key, value) != null;
        }

        public int size() {
            return map.size();
        }
    }

    /** java:sync: every call under the wrapper's monitor (replace included). */
    static final class Sync implements BenchMap {
        private final Map<Long, Long> map;

        Sync(int capacity) {
            map = Collections.synchronizedMap(new HashMap<>(hashMapCapacity(capacity)));
        }

        public Long get(Long key) {
            return map.get(key);
        }

        public boolean put(Long key, Long value) {
            return map.put(key, value) == null;
        }

        public boolean remove(Long key) {
            return map.remove(key) != null;
        }

        public boolean update(Long key, Long value) {
            return map.replace(key, value) != null;
        }

        public int size() {
            return map.size();
        }
    }

    /** java:rwlock: gets under the read lock, writes under the write lock (non-fair). */
    static final class RwLock implements BenchMap {
        private final HashMap<Long, Long> map;
        private final Lock read, write;

        RwLock(int capacity) {
            map = new HashMap<>(hashMapCapacity(capacity));
            ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
            read = lock.readLock();
            write = lock.writeLock();
        }

        public Long get(Long key) {
            read.lock();
            try {
                return map.get(key);
            } finally {
                read.unlock();
            }
        }

        public boolean put(Long key, Long value) {
            write.lock();
            try {
                return map.put(key, value) == null;
            } finally {
                write.unlock();
            }
        }

        public boolean remove(Long key) {
            write.lock();
            try {
                return map.remove(key) != null;
            } finally {
                write.unlock();
            }
        }

        public boolean update(Long key, Long value) {
            write.lock();
            try {
                return map.replace(key, value) != null;
            } finally {
                write.unlock();
            }
        }

        public int size() {
            read.lock();
            try {
                return map.size();
            } finally {
                read.unlock();
            }
        }
    }

    /** --dump-keys: a map that prints every call it gets instead of storing anything. */
    static final class Recorder implements BenchMap {
        final StringBuilder out = new StringBuilder();
        int thread;

        private void record(String kind, Long key) {
            out.append("dump ").append(thread).append(' ').append(kind).append(' ')
                    .append(Long.toUnsignedString(key)).append('\n');
        }

        public Long get(Long key) {
            record("get", key);
            return null;
        }

        public boolean put(Long key, Long value) {
            record("put", key);
            return true;
        }

        public boolean remove(Long key) {
            record("remove", key);
            return false;
        }

        public boolean update(Long key, Long value) {
            record("update", key);
            return false;
        }

        public int size() {
            return 0;
        }
    }

    /** HashMap's capacity argument for n entries without a resize (load factor 0.75). */
    static int hashMapCapacity(int n) {
        return (int) Math.min(Integer.MAX_VALUE - 8, (long) (n / 0.75) + 1);
    }

    // ---- the PRNGs and key streams of mix.c (bench/chmbench.h), ported bit for bit ----------

    static long xorshift64(long x) {
        x ^= x << 13;
        x ^= x >>> 7;
        x ^= x << 17;
        return x;
    }

    static final class SplitMix64 {
        long state;

        SplitMix64(long seed) {
            state = seed;
        }

        long next() {
            long z = (state += 0x9e3779b97f4a7c15L);
            z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
            z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
            return z ^ (z >>> 31);
        }

        /** bench_seed_rng: a nonzero xorshift state. */
        long nextNonzero() {
            long s;
            do
                s = next();
            while (s == 0);
            return s;
        }
    }

    /** mix.c's fill_zipf_streams: Zipf(0.99) ranks over [0, n), scrambled by one permutation. */
    static int[] zipfStreams(long n, int threads, long seed) {
        final double theta = 0.99;
        if (n > Integer.MAX_VALUE - 8)
            fail("range " + n + " is too large for a Java array");
        SplitMix64 rng = new SplitMix64(seed ^ 0x2545f4914f6cdd1dL);
        int[] permutation = new int[(int) n];
        for (int i = 0; i < n; i++)
            permutation[i] = i;
        for (long i = n - 1; i > 0; i--) { /* Fisher-Yates */
            int j = (int) Long.remainderUnsigned(rng.next(), i + 1);
            int tmp = permutation[(int) i];
            permutation[(int) i] = permutation[j];
            permutation[j] = tmp;
        }
        double zetan = 0;
        for (long i = 1; i <= n; i++)
            zetan += Math.pow((double) i, -theta);
        final double zeta2 = 1 + Math.pow(0.5, theta);
        final double alpha = 1 / (1 - theta);
        final double eta = (1 - Math.pow(2.0 / (double) n, 1 - theta)) / (1 - zeta2 / zetan);
        int[] keys = new int[threads * ZIPF_STREAM_LENGTH];
        for (int i = 0; i < keys.length; i++) {
            double u = (double) (rng.next() >>> 11) * 0x1p-53;
            double uz = u * zetan;
            long rank;
            if (uz < 1)
                rank = 0;
            else if (uz < zeta2)
                rank = 1;
            else
                rank = (long) ((double) n * Math.pow(eta * u - eta + 1, alpha));
            if (rank >= n)
                rank = n - 1;
            keys[i] = permutation[(int) rank];
        }
        return keys;
    }

    // ---- the trial ----------------------------------------------------------------------------

    final BenchMap map;
    final int threads;
    final long keys, range;
    final long getBelow, putBelow, removeBelow; /* 31-bit thresholds */
    final long keyMask;                        /* ~1 for ycsb: every key an even, present one */
    final boolean preset;     /* mix.c's preset loop, else its churn or grow loop */
    final boolean grow;       /* writes=grow: every write (preset: every put) a fresh key */
    final boolean countKinds;
    final int sampleEvery;    /* -bm sample: every Nth operation timed; 0: off */
    final Long[] boxed; /* the key range, boxed once: no allocation for a drawn key */

    /* JMH's synchronized iterations, as bench/runner.c's iteration_control */
    final AtomicInteger generation = new AtomicInteger(), started = new AtomicInteger(),
            stopped = new AtomicInteger(), finished = new AtomicInteger();
    volatile boolean done, quit;

    MapBench(BenchMap map, Map<String, String> args) {
        this.map = map;
        threads = (int) number(args, "threads");
        keys = number(args, "keys");
        range = number(args, "range");
        getBelow = number(args, "getBelow");
        putBelow = number(args, "putBelow");
        removeBelow = number(args, "removeBelow");
        keyMask = number(args, "evenKeys") != 0 ? ~1L : ~0L;
        countKinds = number(args, "countKinds") != 0;
        String loop = args.getOrDefault("loop", "");
        if (!loop.equals("plain") && !loop.equals("preset"))
            fail("loop must be plain or preset, not '" + loop + "'");
        preset = loop.equals("preset");
        grow = number(args, "grow") != 0;
        long every = args.containsKey("sampleEvery") ? number(args, "sampleEvery") : 0;
        if (args.containsKey("sampleEvery") && (every < 1 || every > 1L << 31 || !preset))
            fail("sampleEvery= needs an integer in [1, 2^31] and loop=preset");
        sampleEvery = (int) every;
        boxed = new Long[(int) Math.min(range, 1 << 27)];
        for (int k = 0; k < boxed.length; k++)
            boxed[k] = Long.valueOf(k);
    }

    Long box(long key) {
        return key < boxed.length ? boxed[(int) key] : Long.valueOf(key);
    }

    /** One thread of the trial: its key stream and counters, and the loops of mix.c. */
    final class Worker extends Thread {
        long rng;
        int[] zipfKeys; /* null: uniform keys */
        int zipfPosition;
        long nextNewKey; /* writes=grow: this thread's next fresh key */
        long inserts, removes, sink;
        final long[] kinds = new long[4];
        long measuredOps, measuredNs;
        int countdown = sampleEvery; /* -bm sample: operations to the next timed one */
        final Histogram[] hist;      /* -bm sample: this thread's, per kind; else null */

        Worker(int id) {
            super("mapbench-" + id);
            nextNewKey = range + id;
            hist = sampleEvery > 0 ? new Histogram[] {new Histogram(), new Histogram(),
                                                      new Histogram(), new Histogram()} : null;
        }

        void runBatch(int count) {
            if (preset)
                preset(count);
            else if (grow)
                grow(count);
            else
                churn(count);
        }

        /** mix.c's churn loop: reads% gets, the rest puts or removes by bit 31. */
        private void churn(int count) {
            final BenchMap map = MapBench.this.map;
            final int[] zipf = zipfKeys;
            final long range = MapBench.this.range, readBelow = getBelow;
            long rng = this.rng, inserts = 0, removes = 0, sink = 0;
            int position = zipfPosition;
            for (int i = 0; i < count; i++) {
                rng = xorshift64(rng);
                long key = zipf != null ? zipf[position++ & (ZIPF_STREAM_LENGTH - 1)]
                                        : ((rng >>> 32) * range) >>> 32;
                if ((rng & 0x7fffffffL) < readBelow) {
                    Long value = map.get(box(key));
                    if (value != null)
                        sink += 1 + value;
                } else if ((rng & (1L << 31)) != 0) {
                    Long k = box(key);
                    if (map.put(k, k))
                        inserts++;
                } else if (map.remove(box(key))) {
                    removes++;
                }
            }
            this.rng = rng;
            zipfPosition = position;
            this.inserts += inserts;
            this.removes += removes;
            this.sink ^= sink;
        }

        /** mix.c's grow loop: every write a put of a key never used before. */
        private void grow(int count) {
            final BenchMap map = MapBench.this.map;
            final int[] zipf = zipfKeys;
            final long range = MapBench.this.range, readBelow = getBelow, stride = threads;
            long rng = this.rng, inserts = 0, sink = 0, next = nextNewKey;
            int position = zipfPosition;
            for (int i = 0; i < count; i++) {
                rng = xorshift64(rng);
                if ((rng & 0x7fffffffL) < readBelow) {
                    long key = zipf != null ? zipf[position++ & (ZIPF_STREAM_LENGTH - 1)]
                                            : ((rng >>> 32) * range) >>> 32;
                    Long value = map.get(box(key));
                    if (value != null)
                        sink += 1 + value;
                } else {
                    Long k = box(next);
                    if (map.put(k, k))
                        inserts++;
                    next += stride;
                }
            }
            this.rng = rng;
            zipfPosition = position;
            nextNewKey = next;
            this.inserts += inserts;
            this.sink ^= sink;
        }

        /** mix.c's preset loop (mix_draw + mix_execute): four kinds by thresholds, counted. */
        private void preset(int count) {
            final BenchMap map = MapBench.this.map;
            final int[] zipf = zipfKeys;
            final long range = MapBench.this.range, stride = threads;
            long rng = this.rng, inserts = 0, removes = 0, sink = 0;
            int position = zipfPosition;
            for (int i = 0; i < count; i++) {
                rng = xorshift64(rng);
                long pick = rng & 0x7fffffffL;
                long key = zipf != null ? zipf[position++ & (ZIPF_STREAM_LENGTH - 1)]
                                        : ((rng >>> 32) * range) >>> 32;
                key &= keyMask;
                int kind = pick < getBelow ? GET
                         : pick < putBelow ? PUT
                         : pick < removeBelow ? REMOVE : UPDATE;
                if (kind == PUT && grow) {
                    key = nextNewKey;
                    nextNewKey += stride;
                }
                switch (kind) {
                    case GET -> {
                        Long value = map.get(box(key));
                        if (value != null)
                            sink += 1 + value;
                    }
                    case PUT -> {
                        Long k = box(key);
                        if (map.put(k, k))
                            inserts++;
                    }
                    case REMOVE -> {
                        if (map.remove(box(key)))
                            removes++;
                    }
                    /* every Java map here updates atomically: nothing is ever re-inserted */
                    default -> map.update(box(key), Long.valueOf(rng));
                }
                kinds[kind]++;
            }
            this.rng = rng;
            zipfPosition = position;
            this.inserts += inserts;
            this.removes += removes;
            this.sink ^= sink;
        }

        /**
         * mix.c's mix_run_batch_sampled: the preset loop, every sampleEvery-th operation timed
         * alone (its draw outside the clock) into its kind's histogram, in ps.
         */
        private void presetSampled(int count) {
            final int[] zipf = zipfKeys;
            final long range = MapBench.this.range, stride = threads;
            final int every = sampleEvery;
            long rng = this.rng;
            int position = zipfPosition, countdown = this.countdown;
            for (int i = 0; i < count; i++) {
                rng = xorshift64(rng);
                long pick = rng & 0x7fffffffL;
                long key = zipf != null ? zipf[position++ & (ZIPF_STREAM_LENGTH - 1)]
                                        : ((rng >>> 32) * range) >>> 32;
                key &= keyMask;
                int kind = pick < getBelow ? GET
                         : pick < putBelow ? PUT
                         : pick < removeBelow ? REMOVE : UPDATE;
                if (kind == PUT && grow) {
                    key = nextNewKey;
                    nextNewKey += stride;
                }
                if (--countdown != 0) {
                    execute(kind, key, rng);
                } else {
                    countdown = every;
                    long start = System.nanoTime();
                    execute(kind, key, rng);
                    long stop = System.nanoTime();
                    hist[kind].record(Math.max(0, stop - start) * 1000);
                }
                kinds[kind]++;
            }
            this.rng = rng;
            zipfPosition = position;
            this.countdown = countdown;
        }

        /** mix.c's mix_execute: a drawn operation on the map (what -bm sample times). */
        private void execute(int kind, long key, long rng) {
            switch (kind) {
                case GET -> {
                    Long value = map.get(box(key));
                    if (value != null)
                        sink += 1 + value;
                }
                case PUT -> {
                    Long k = box(key);
                    if (map.put(k, k))
                        inserts++;
                }
                case REMOVE -> {
                    if (map.remove(box(key)))
                        removes++;
                }
                default -> map.update(box(key), Long.valueOf(rng));
            }
        }

        /** bench/runner.c's worker_main for time-bound iterations. */
        @Override
        public void run() {
            int seen = 0;
            for (;;) {
                int g;
                while ((g = generation.get()) == seen)
                    Thread.yield();
                seen = g;
                if (quit)
                    break;
                started.incrementAndGet();
                while (started.get() < threads)
                    runBatch(BATCH); /* catch-up, uncounted */
                long ops = 0, start = System.nanoTime();
                if (sampleEvery > 0) /* a loop of its own, as runner.c's: throughput's as it was */
                    while (!done) {
                        presetSampled(BATCH);
                        ops += BATCH;
                    }
                else
                    while (!done) {
                        runBatch(BATCH);
                        ops += BATCH;
                    }
                long stop = System.nanoTime();
                measuredOps = ops;
                measuredNs = stop - start;
                stopped.incrementAndGet();
                while (stopped.get() < threads)
                    runBatch(BATCH); /* warm-down, uncounted */
                finished.incrementAndGet();
            }
        }
    }

    /** The workers with mix.c's seeds: Zipf streams first, then one splitmix64 seeder. */
    Worker[] workers(long seed, boolean zipf) {
        int[] streams = zipf ? zipfStreams(range, threads, seed) : null;
        SplitMix64 seeder = new SplitMix64(seed);
        Worker[] workers = new Worker[threads];
        for (int i = 0; i < threads; i++) {
            Worker w = workers[i] = new Worker(i);
            w.rng = seeder.nextNonzero();
            if (zipf) {
                w.zipfKeys = java.util.Arrays.copyOfRange(streams, i * ZIPF_STREAM_LENGTH,
                                                          (i + 1) * ZIPF_STREAM_LENGTH);
                w.zipfPosition = (int) seeder.next();
            }
        }
        return workers;
    }

    /** mix_setup's prefill and its check, then one read of every key (the steady state). */
    long prefill() {
        long prefilled = 0;
        for (long k = 0; k < range; k += 2)
            prefilled += map.put(box(k), box(k)) ? 1 : 0;
        if (prefilled != keys || map.size() != keys)
            fail("prefill of " + keys + " keys left " + map.size() + " entries");
        for (long k = 0; k < range; k += 2) {
            Long value = map.get(box(k));
            if (value == null || value != k)
                fail("prefilled key " + k + " not found");
        }
        return prefilled;
    }

    static void sleepSeconds(double seconds) {
        long end = System.nanoTime() + (long) (seconds * 1e9), left;
        while ((left = end - System.nanoTime()) > 0)
            LockSupport.parkNanos(left);
    }

    /** bench/runner.c's run_iteration: open, wait for all, sleep, raise done, wait, report. */
    void iteration(Worker[] workers, String phase, int index, double seconds) {
        if (sampleEvery > 0) /* published to the workers by the generation's increment */
            for (Worker w : workers)
                for (Histogram h : w.hist)
                    h.reset();
        started.set(0);
        stopped.set(0);
        finished.set(0);
        done = false;
        generation.incrementAndGet(); /* publishes the resets */
        while (started.get() < threads)
            LockSupport.parkNanos(20_000);
        sleepSeconds(seconds);
        done = true;
        while (finished.get() < threads)
            LockSupport.parkNanos(20_000);
        StringBuilder line = new StringBuilder("iteration ").append(phase).append(' ').append(index);
        for (Worker w : workers)
            line.append(' ').append(w.measuredOps).append(' ').append(w.measuredNs);
        if (sampleEvery > 0 && phase.equals("measure")) { /* runner.c's collect_latency */
            Histogram all = new Histogram();
            for (int k = 0; k < 4; k++) {
                all.reset();
                for (Worker w : workers)
                    all.merge(w.hist[k]);
                line.append("\nlatency ").append(index).append(' ').append(k).append(' ');
                all.appendText(line);
            }
        }
        System.out.println(line);
        System.out.flush();
    }

    static void fail(String message) {
        System.out.flush();
        System.err.println("MapBench: " + message);
        System.exit(2);
    }

    static long number(Map<String, String> args, String name) {
        String v = args.get(name);
        if (v == null)
            fail("missing argument " + name + "=");
        try {
            return Long.parseUnsignedLong(v);
        } catch (NumberFormatException e) {
            fail(name + " must be an integer, not '" + v + "'");
        }
        return 0;
    }

    static double seconds(Map<String, String> args, String name) {
        try {
            return Double.parseDouble(args.getOrDefault(name, "x"));
        } catch (NumberFormatException e) {
            fail(name + " must be a number of seconds");
        }
        return 0;
    }

    public static void main(String[] argv) throws InterruptedException {
        if (argv.length == 1 && argv[0].equals("--self-test"))
            System.exit(selfTest());
        Map<String, String> args = new HashMap<>();
        for (String a : argv) {
            int eq = a.indexOf('=');
            if (eq <= 0)
                fail("arguments are name=value, got '" + a + "'");
            args.put(a.substring(0, eq), a.substring(eq + 1));
        }
        int keys = (int) Math.min(number(args, "keys"), Integer.MAX_VALUE - 8);
        long dump = args.containsKey("dumpKeys") ? number(args, "dumpKeys") : 0;
        String name = args.getOrDefault("map", "");
        BenchMap map = dump > 0 ? new Recorder()
                     : name.equals("chm") ? new Chm(keys)
                     : name.equals("sync") ? new Sync(keys)
                     : name.equals("rwlock") ? new RwLock(keys) : null;
        if (map == null)
            fail("map must be chm, sync or rwlock, not '" + name + "'");
        MapBench trial = new MapBench(map, args);
        if (trial.threads < 1)
            fail("threads must be at least 1");
        Worker[] workers = trial.workers(number(args, "seed"), number(args, "zipf") != 0);
        if (dump > 0) {
            Recorder recorder = (Recorder) map;
            for (int t = 0; t < Math.min(trial.threads, 2); t++) {
                recorder.thread = t;
                for (long i = 0; i < dump; i++)
                    workers[t].runBatch(1);
            }
            System.out.print(recorder.out);
            System.out.flush();
            return;
        }
        long prefilled = trial.prefill();
        System.out.println("prefilled " + prefilled);
        if (trial.sampleEvery > 0) {
            long[] timer = calibrateClock();
            System.out.println("timer " + timer[0] + " " + timer[1] + " " + CLOCK_NAME);
        }
        for (Worker w : workers)
            w.start();
        int warmups = (int) number(args, "warmupIterations");
        int iterations = (int) number(args, "iterations");
        for (int i = 0; i < warmups; i++)
            trial.iteration(workers, "warmup", i, seconds(args, "warmupSeconds"));
        for (int i = 0; i < iterations; i++)
            trial.iteration(workers, "measure", i, seconds(args, "seconds"));
        trial.quit = true;
        trial.generation.incrementAndGet();
        for (Worker w : workers)
            w.join();
        long inserts = 0, removes = 0;
        long[] kinds = new long[4];
        for (Worker w : workers) {
            inserts += w.inserts;
            removes += w.removes;
            for (int k = 0; k < 4; k++)
                kinds[k] += w.kinds[k];
        }
        if (trial.countKinds)
            System.out.println("kinds " + kinds[0] + " " + kinds[1] + " " + kinds[2] + " " + kinds[3]);
        /* the size invariant of mix.c (bench_check_size), with its test hook */
        if (System.getenv("CHMBENCH_INJECT_SIZE_ERROR") != null)
            inserts++;
        long size = map.size();
        if (size == prefilled + inserts - removes)
            System.out.println("verify ok size " + size);
        else
            System.out.println("verify failed size invariant violated: size " + size
                               + " != prefill " + prefilled + " + inserts " + inserts
                               + " - removes " + removes);
        System.out.flush();
    }
}

// SPDX-License-Identifier: BSD-2-Clause
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Collections;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * MapBench - the child process of chmbench's java:* peers: one fork of one mix trial on
 * ConcurrentHashMap (java:chm), Collections.synchronizedMap(new HashMap()) (java:sync), a
 * HashMap behind a ReentrantReadWriteLock (java:rwlock) or Java 7's segmented ConcurrentHashMap
 * (java:segments: Java7Map, rebuilt here from its design, since no JDK after 7 ships it).
 * bench/originals/originals.c starts it with the trial as name=value arguments and reads the
 * lines it prints (the protocol is there).
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

    /**
     * --self-test: the ported histogram against what chmbench's C code computes, and
     * java:segments' Java7Map against its design (java7MapSelfTest).
     */
    static int selfTest() throws InterruptedException {
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
        int[] java7 = java7MapSelfTest();
        checks += java7[0];
        failed += java7[1];
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

    /**
     * java:segments: Java 7's segmented ConcurrentHashMap (Java7Map below, rebuilt from its
     * design), made as a Java 7 program makes it: new ConcurrentHashMap(capacity), 16 segments.
     */
    static final class Segments implements BenchMap {
        private final Java7Map<Long, Long> map;

        Segments(int capacity) {
            map = new Java7Map<>(capacity);
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

    // ---- java:segments: Java 7's ConcurrentHashMap, rebuilt from its design -------------------

    /**
     * The segmented ConcurrentHashMap of Java 7 (7u6 to 7u80), written from its design (docs/
     * harness.md, "java:segments", says field by field how it follows Java 7 and where it does
     * not); no OpenJDK source was copied. Java 8 replaced it with the map java:chm runs, so no
     * JDK this project can install ships it: this is how its design is measured on Java 17's JIT.
     *
     * The map is an array of Segments, each a small hash table of its own with its own lock (the
     * Segment is the ReentrantLock: one object fewer). A key's spread hash picks the segment by
     * its high bits and the bin inside the segment by its low bits. Readers take no lock: they
     * read the segment, its volatile table and the bin's head with volatile reads and walk the
     * volatile next links of immutable-keyed entries. Writers lock the segment, spinning on
     * tryLock while they walk the bin first (scanAndLockForPut), and publish a new head with a
     * release store. A segment doubles on its own (rehash) by building a new table, reusing the
     * tail of each chain whose nodes all land in one new bin (lastRun) and cloning the nodes
     * before it, so the old table's chains never change under a reader still on it. size() sums
     * the segments' counts without locks until two passes see the same modCounts, and locks all
     * segments after three passes that did not.
     *
     * Java 7 reads and writes array slots through sun.misc.Unsafe: getObjectVolatile,
     * putOrderedObject (a release store) and compareAndSwapObject. Here VarHandles do the same
     * (getVolatile, setRelease, compareAndSet) on plain arrays, adding the bounds and array-type
     * checks Unsafe skipped; HashEntry.setNext is a release store through a field VarHandle.
     */
    static final class Java7Map<K, V> {
        static final int MAXIMUM_CAPACITY = 1 << 30;          /* entries of one segment's table */
        static final int MIN_SEGMENT_TABLE_CAPACITY = 2;
        static final int MAX_SEGMENTS = 1 << 16;
        static final int DEFAULT_CONCURRENCY_LEVEL = 16;      /* segments */
        static final float DEFAULT_LOAD_FACTOR = 0.75f;
        static final int RETRIES_BEFORE_LOCK = 2;             /* size(): unlocked passes - 1 */
        /* tryLock spins before lock(): spinning only pays with another CPU to release it */
        static final int MAX_SCAN_RETRIES = Runtime.getRuntime().availableProcessors() > 1 ? 64 : 1;

        static final VarHandle SLOT = MethodHandles.arrayElementVarHandle(HashEntry[].class);
        static final VarHandle SEGMENT = MethodHandles.arrayElementVarHandle(Segment[].class);

        /** A key, its value and the next entry of its bin; the key and hash never change. */
        static final class HashEntry<K, V> {
            static final VarHandle NEXT;

            static {
                try {
                    NEXT = MethodHandles.lookup().findVarHandle(HashEntry.class, "next",
                                                                HashEntry.class);
                } catch (ReflectiveOperationException e) {
                    throw new ExceptionInInitializerError(e);
                }
            }

            final int hash;
            final K key;
            volatile V value;
            volatile HashEntry<K, V> next;

            HashEntry(int hash, K key, V value, HashEntry<K, V> next) {
                this.hash = hash;
                this.key = key;
                this.value = value;
                this.next = next;
            }

            /**
             * Java 7's setNext: an ordered store, not a volatile one (no StoreLoad fence); only a
             * lock holder calls it, and the unlock that follows publishes it.
             */
            void setNext(HashEntry<K, V> n) {
                NEXT.setRelease(this, n);
            }
        }

        @SuppressWarnings("unchecked")
        static <K, V> HashEntry<K, V>[] newTable(int capacity) {
            return (HashEntry<K, V>[]) new HashEntry<?, ?>[capacity];
        }

        /** Java 7's entryAt: the bin's head, a volatile read (readers, and scans before the lock). */
        @SuppressWarnings("unchecked")
        static <K, V> HashEntry<K, V> entryAt(HashEntry<K, V>[] tab, int i) {
            return (HashEntry<K, V>) SLOT.getVolatile(tab, i);
        }

        /** Java 7's setEntryAt: a new head, an ordered store (under the lock). */
        static <K, V> void setEntryAt(HashEntry<K, V>[] tab, int i, HashEntry<K, V> e) {
            SLOT.setRelease(tab, i, e);
        }

        /** One segment: a hash table of its own and the lock that guards its writes. */
        static final class Segment<K, V> extends ReentrantLock { /* non-fair, as Java 7's */
            private static final long serialVersionUID = 7L;

            /* replaced whole by rehash (a volatile write publishes the new table) */
            transient volatile HashEntry<K, V>[] table;
            /* plain fields, written under the lock; size() reads them racily and checks */
            transient int count;     /* entries */
            transient int modCount;  /* mutations (size() compares their sums across passes) */
            transient int threshold; /* rehash when count would exceed it: capacity x loadFactor */
            final float loadFactor;

            Segment(float loadFactor, int threshold, HashEntry<K, V>[] table) {
                this.loadFactor = loadFactor;
                this.threshold = threshold;
                this.table = table;
            }

            /** The head of hash's bin in this segment's current table (volatile reads). */
            HashEntry<K, V> first(int hash) {
                HashEntry<K, V>[] tab = table;
                return entryAt(tab, (tab.length - 1) & hash);
            }

            /** put and putIfAbsent under the lock; the previous value, or null when inserted. */
            V put(K key, int hash, V value, boolean onlyIfAbsent) {
                HashEntry<K, V> node = tryLock() ? null : scanAndLockForPut(key, hash, value);
                try {
                    HashEntry<K, V>[] tab = table;
                    int index = (tab.length - 1) & hash;
                    HashEntry<K, V> first = entryAt(tab, index);
                    for (HashEntry<K, V> e = first; e != null; e = e.next) {
                        K k = e.key;
                        if (k == key || (e.hash == hash && key.equals(k))) {
                            V old = e.value;
                            if (!onlyIfAbsent) {
                                e.value = value;
                                ++modCount;
                            }
                            return old;
                        }
                    }
                    /* a miss: the new entry becomes the bin's head */
                    if (node != null)
                        node.setNext(first);
                    else
                        node = new HashEntry<>(hash, key, value, first);
                    int c = count + 1;
                    if (c > threshold && tab.length < MAXIMUM_CAPACITY)
                        rehash(node); /* links node into the new table */
                    else
                        setEntryAt(tab, index, node);
                    ++modCount;
                    count = c;
                    return null;
                } finally {
                    unlock();
                }
            }

            /**
             * Java 7's scanAndLockForPut: while tryLock fails, walk the key's bin (warming the
             * cache lines the locked put will read) and, if the key is absent, allocate the entry
             * before the lock; after MAX_SCAN_RETRIES spins past the walk, block in lock(). Every
             * second spin rechecks the bin's head and, if another put changed it, walks again.
             * Returns the entry made ahead, or null.
             */
            private HashEntry<K, V> scanAndLockForPut(K key, int hash, V value) {
                HashEntry<K, V> first = first(hash), e = first, node = null;
                int retries = -1; /* negative while walking the bin */
                while (!tryLock()) {
                    HashEntry<K, V> f;
                    if (retries < 0) {
                        if (e == null) {
                            if (node == null)
                                node = new HashEntry<>(hash, key, value, null);
                            retries = 0;
                        } else if (key.equals(e.key)) {
                            retries = 0;
                        } else {
                            e = e.next;
                        }
                    } else if (++retries > MAX_SCAN_RETRIES) {
                        lock();
                        break;
                    } else if ((retries & 1) == 0 && (f = first(hash)) != first) {
                        e = first = f;
                        retries = -1;
                    }
                }
                return node;
            }

            /** Java 7's scanAndLock, for remove and replace: scanAndLockForPut, allocating nothing. */
            private void scanAndLock(Object key, int hash) {
                HashEntry<K, V> first = first(hash), e = first;
                int retries = -1;
                while (!tryLock()) {
                    HashEntry<K, V> f;
                    if (retries < 0) {
                        if (e == null || key.equals(e.key))
                            retries = 0;
                        else
                            e = e.next;
                    } else if (++retries > MAX_SCAN_RETRIES) {
                        lock();
                        break;
                    } else if ((retries & 1) == 0 && (f = first(hash)) != first) {
                        e = first = f;
                        retries = -1;
                    }
                }
            }

            /**
             * Doubles this segment's table (under the lock) and adds node. Each old bin's chain is
             * split between bins i and i + oldCapacity: its tail run of entries that all go to one
             * new bin (lastRun) is reused as it is, the entries before it are cloned into the new
             * table; no old entry is changed, so a reader still walking the old table sees its
             * chains whole. The new table is published last, by the volatile write.
             */
            private void rehash(HashEntry<K, V> node) {
                HashEntry<K, V>[] oldTable = table;
                int oldCapacity = oldTable.length, newCapacity = oldCapacity << 1;
                threshold = (int) (newCapacity * loadFactor);
                HashEntry<K, V>[] newTable = newTable(newCapacity);
                int mask = newCapacity - 1;
                for (int i = 0; i < oldCapacity; i++) {
                    HashEntry<K, V> e = oldTable[i]; /* plain: the lock holder wrote them */
                    if (e == null)
                        continue;
                    HashEntry<K, V> next = e.next;
                    int index = e.hash & mask;
                    if (next == null) { /* a single entry moves as it is */
                        newTable[index] = e;
                        continue;
                    }
                    HashEntry<K, V> lastRun = e;
                    int lastIndex = index;
                    for (HashEntry<K, V> p = next; p != null; p = p.next) {
                        int k = p.hash & mask;
                        if (k != lastIndex) {
                            lastIndex = k;
                            lastRun = p;
                        }
                    }
                    newTable[lastIndex] = lastRun;
                    for (HashEntry<K, V> p = e; p != lastRun; p = p.next) {
                        int k = p.hash & mask;
                        newTable[k] = new HashEntry<>(p.hash, p.key, p.value, newTable[k]);
                    }
                }
                int index = node.hash & mask;
                node.setNext(newTable[index]);
                newTable[index] = node;
                table = newTable;
            }

            /** remove under the lock: unlinks the entry in place; its old value, or null. */
            V remove(Object key, int hash) {
                if (!tryLock())
                    scanAndLock(key, hash);
                try {
                    HashEntry<K, V>[] tab = table;
                    int index = (tab.length - 1) & hash;
                    HashEntry<K, V> pred = null;
                    for (HashEntry<K, V> e = entryAt(tab, index); e != null; pred = e, e = e.next) {
                        K k = e.key;
                        if (k == key || (e.hash == hash && key.equals(k))) {
                            /* e itself stays intact for a reader standing on it */
                            if (pred == null)
                                setEntryAt(tab, index, e.next);
                            else
                                pred.setNext(e.next);
                            ++modCount;
                            --count;
                            return e.value;
                        }
                    }
                    return null;
                } finally {
                    unlock();
                }
            }

            /** replace(key, value) under the lock: only if present; the old value, or null. */
            V replace(K key, int hash, V value) {
                if (!tryLock())
                    scanAndLock(key, hash);
                try {
                    for (HashEntry<K, V> e = first(hash); e != null; e = e.next) {
                        K k = e.key;
                        if (k == key || (e.hash == hash && key.equals(k))) {
                            V old = e.value;
                            e.value = value;
                            ++modCount;
                            return old;
                        }
                    }
                    return null;
                } finally {
                    unlock();
                }
            }
        }

        final int segmentShift, segmentMask;
        final Segment<K, V>[] segments; /* slots filled lazily (ensureSegment), never emptied */
        /* not in Java 7: how many size() calls fell back to locking every segment (--self-test) */
        volatile int lockedSizes;

        Java7Map(int initialCapacity) {
            this(initialCapacity, DEFAULT_LOAD_FACTOR, DEFAULT_CONCURRENCY_LEVEL);
        }

        /**
         * Java 7's constructor: concurrencyLevel rounded up to a power of two segments, and
         * initialCapacity spread over them (per segment the next power of two, at least 2).
         * Only segment 0 is made; it is the prototype of the others.
         */
        @SuppressWarnings("unchecked")
        Java7Map(int initialCapacity, float loadFactor, int concurrencyLevel) {
            if (!(loadFactor > 0) || initialCapacity < 0 || concurrencyLevel <= 0)
                throw new IllegalArgumentException();
            concurrencyLevel = Math.min(concurrencyLevel, MAX_SEGMENTS);
            int shift = 0, segmentCount = 1;
            while (segmentCount < concurrencyLevel) {
                shift++;
                segmentCount <<= 1;
            }
            segmentShift = 32 - shift; /* the hash's top `shift` bits choose the segment */
            segmentMask = segmentCount - 1;
            initialCapacity = Math.min(initialCapacity, MAXIMUM_CAPACITY);
            int perSegment = (initialCapacity + segmentCount - 1) / segmentCount, capacity;
            for (capacity = MIN_SEGMENT_TABLE_CAPACITY; capacity < perSegment; capacity <<= 1)
                ;
            segments = (Segment<K, V>[]) new Segment<?, ?>[segmentCount];
            SEGMENT.setRelease(segments, 0, new Segment<K, V>(loadFactor,
                    (int) (capacity * loadFactor), newTable(capacity)));
        }

        /**
         * Java 7's hash (7u6+; its hashSeed applies to String keys only and is 0 by default):
         * the key's hashCode spread by a variant of Wang/Jenkins' integer hash, so that both its
         * high bits (the segment) and its low bits (the bin) depend on every input bit.
         */
        static int hash(Object key) {
            int h = key.hashCode();
            h += (h << 15) ^ 0xffffcd7d;
            h ^= h >>> 10;
            h += h << 3;
            h ^= h >>> 6;
            h += (h << 2) + (h << 14);
            return h ^ (h >>> 16);
        }

        @SuppressWarnings("unchecked")
        Segment<K, V> segmentAt(int j) {
            return (Segment<K, V>) SEGMENT.getVolatile(segments, j);
        }

        Segment<K, V> segmentFor(int hash) {
            return segmentAt((hash >>> segmentShift) & segmentMask);
        }

        /**
         * Java 7's ensureSegment: segment j, made on first use from segment 0's current capacity
         * and load factor and installed by compareAndSet (a racing thread's wins).
         */
        @SuppressWarnings("unchecked")
        Segment<K, V> ensureSegment(int j) {
            Segment<K, V> seg = segmentAt(j);
            if (seg != null)
                return seg;
            Segment<K, V> prototype = segments[0];
            int capacity = prototype.table.length;
            float lf = prototype.loadFactor;
            HashEntry<K, V>[] tab = newTable(capacity);
            if ((seg = segmentAt(j)) != null)
                return seg;
            Segment<K, V> made = new Segment<>(lf, (int) (capacity * lf), tab);
            while ((seg = segmentAt(j)) == null)
                if (SEGMENT.compareAndSet(segments, j, (Segment<K, V>) null, made))
                    return made;
            return seg;
        }

        /** get: no lock, volatile reads of the segment, its table, the head and the links. */
        V get(Object key) {
            int h = hash(key);
            Segment<K, V> s = segmentFor(h);
            HashEntry<K, V>[] tab;
            if (s == null || (tab = s.table) == null)
                return null;
            for (HashEntry<K, V> e = entryAt(tab, (tab.length - 1) & h); e != null; e = e.next) {
                K k = e.key;
                if (k == key || (e.hash == h && key.equals(k)))
                    return e.value;
            }
            return null;
        }

        @SuppressWarnings("unchecked")
        V put(K key, V value) {
            if (value == null)
                throw new NullPointerException();
            int hash = hash(key);
            int j = (hash >>> segmentShift) & segmentMask;
            /* a plain read, as Java 7's getObject: a stale null only sends us to ensureSegment */
            Segment<K, V> s = (Segment<K, V>) SEGMENT.get(segments, j);
            if (s == null)
                s = ensureSegment(j);
            return s.put(key, hash, value, false);
        }

        V remove(Object key) {
            int hash = hash(key);
            Segment<K, V> s = segmentFor(hash);
            return s == null ? null : s.remove(key, hash);
        }

        V replace(K key, V value) {
            if (value == null)
                throw new NullPointerException();
            int hash = hash(key);
            Segment<K, V> s = segmentFor(hash);
            return s == null ? null : s.replace(key, hash, value);
        }

        /**
         * Java 7's size(): passes summing every segment's count and modCount without a lock,
         * until a pass sees the modCount sum of the pass before (the first compares with 0); the
         * pass after three unlocked ones locks every segment (making the missing ones) first,
         * and the locks are released after the count. Integer.MAX_VALUE on overflow.
         */
        int size() {
            long last = 0, sum;
            int size, retries = -1;
            boolean overflow;
            try {
                for (;;) {
                    if (retries++ == RETRIES_BEFORE_LOCK) {
                        for (int j = 0; j < segments.length; j++)
                            ensureSegment(j).lock();
                        lockedSizes++; /* under every lock: no lost increment */
                    }
                    sum = 0;
                    size = 0;
                    overflow = false;
                    for (int j = 0; j < segments.length; j++) {
                        Segment<K, V> seg = segmentAt(j);
                        if (seg != null) {
                            sum += seg.modCount;
                            int c = seg.count;
                            if (c < 0 || (size += c) < 0)
                                overflow = true;
                        }
                    }
                    if (sum == last)
                        break;
                    last = sum;
                }
            } finally {
                if (retries > RETRIES_BEFORE_LOCK)
                    for (int j = 0; j < segments.length; j++)
                        segmentAt(j).unlock();
            }
            return overflow ? Integer.MAX_VALUE : size;
        }
    }

    /**
     * --self-test's checks of Java7Map (java:segments), by what the design promises: the same
     * answers as a HashMap through many rehashes, every key in the segment of its hash's high
     * bits and the bin of its low bits, Java 7's sizing, rehash leaving the old table's chains
     * untouched while reusing their tails (lastRun), size() locking nothing on a quiet map and
     * locking every segment when writers keep it moving, and an exact size after concurrent
     * writers. Returns {checks, failures}; prints each failure.
     */
    static int[] java7MapSelfTest() throws InterruptedException {
        int[] result = new int[2];
        java.util.function.BiConsumer<Boolean, String> check = (ok, what) -> {
            result[0]++;
            if (!ok) {
                result[1]++;
                System.out.println("self-test failed: java:segments: " + what);
            }
        };
        /* sizing: new ConcurrentHashMap(1000) in Java 7 is 16 segments of 64 bins, threshold 48 */
        Java7Map<Long, Long> sized = new Java7Map<>(1000);
        check.accept(sized.segments.length == 16 && sized.segmentShift == 28
                     && sized.segmentAt(0).table.length == 64 && sized.segmentAt(0).threshold == 48
                     && sized.segmentAt(1) == null, "new Java7Map(1000): 16 segments x 64 bins");

        /* the same answers as a HashMap, from 2 bins per segment through many rehashes */
        Java7Map<Long, Long> map = new Java7Map<>(0);
        HashMap<Long, Long> oracle = new HashMap<>();
        SplitMix64 rng = new SplitMix64(42);
        int mismatches = 0, sizeMismatches = 0;
        for (int i = 0; i < 300_000; i++) {
            long r = rng.next();
            Long key = Long.valueOf(Long.remainderUnsigned(r >>> 2, 20_000)), value = r;
            Object got, want;
            switch ((int) (r & 3)) {
                case 0 -> { got = map.get(key); want = oracle.get(key); }
                case 1 -> { got = map.put(key, value); want = oracle.put(key, value); }
                case 2 -> { got = map.remove(key); want = oracle.remove(key); }
                default -> { got = map.replace(key, value); want = oracle.replace(key, value); }
            }
            if (!java.util.Objects.equals(got, want))
                mismatches++;
            if (i % 10_007 == 0 && map.size() != oracle.size())
                sizeMismatches++;
        }
        check.accept(mismatches == 0, mismatches + " answers differ from HashMap's");
        check.accept(sizeMismatches == 0 && map.size() == oracle.size(), "size() differs from HashMap's");
        int misplaced = 0, minCapacity = Integer.MAX_VALUE;
        for (Long key : oracle.keySet()) {
            int h = Java7Map.hash(key);
            Java7Map.Segment<Long, Long> s = map.segments[h >>> 28];
            boolean found = false;
            for (var e = s.first(h); e != null; e = e.next)
                found |= e.key.equals(key);
            misplaced += found ? 0 : 1;
        }
        for (var s : map.segments)
            minCapacity = Math.min(minCapacity, s == null ? 0 : s.table.length);
        check.accept(misplaced == 0, misplaced + " keys not in segment hash >>> 28, bin hash & (n - 1)");
        check.accept(minCapacity >= 512, "every segment made and rehashed from 2 bins (smallest "
                                         + minCapacity + ")");

        /* rehash: the old table's chains stay as they were; chain tails are shared (lastRun) */
        Java7Map<Long, Long> one = new Java7Map<>(0, 0.75f, 1); /* one segment, 2 bins */
        Java7Map.Segment<Long, Long> seg = one.segmentAt(0);
        int rehashes = 0, changedChains = 0, shared = 0;
        for (long k = 0; k < 5000; k++) {
            var before = seg.table;
            if (seg.count + 1 <= seg.threshold) { /* no rehash: nothing to compare */
                one.put(k * 7919, k);
                continue;
            }
            java.util.List<java.util.List<Object>> chains = new java.util.ArrayList<>();
            for (var head : before) {
                java.util.List<Object> chain = new java.util.ArrayList<>();
                for (var e = head; e != null; e = e.next)
                    chain.add(e);
                chains.add(chain);
            }
            one.put(k * 7919, k);
            if (seg.table == before)
                continue;
            rehashes++;
            java.util.Set<Object> now = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
            for (var head : seg.table)
                for (var e = head; e != null; e = e.next)
                    now.add(e);
            for (int b = 0; b < before.length; b++) {
                java.util.List<Object> chain = new java.util.ArrayList<>();
                for (var e = before[b]; e != null; e = e.next)
                    chain.add(e);
                changedChains += chain.equals(chains.get(b)) ? 0 : 1;
                /* past a chain's head only lastRun reuse can put an old entry in the new table */
                for (Object e : chain.subList(Math.min(1, chain.size()), chain.size()))
                    shared += now.contains(e) ? 1 : 0;
            }
        }
        check.accept(rehashes == 12 && seg.table.length == 8192, rehashes + " rehashes to "
                     + seg.table.length + " bins for 5000 keys (want 12, 8192)");
        check.accept(changedChains == 0, changedChains + " old chains changed by a rehash");
        check.accept(shared > 0, "no entry past a chain's head reused by a rehash (lastRun)");

        /* size() of a quiet map takes no lock: it returns while another thread holds one */
        Java7Map<Long, Long> quiet = new Java7Map<>(64);
        for (long k = 0; k < 1000; k++)
            quiet.put(k, k);
        Java7Map.Segment<Long, Long> held = quiet.ensureSegment(3);
        java.util.concurrent.CountDownLatch locked = new java.util.concurrent.CountDownLatch(1),
                release = new java.util.concurrent.CountDownLatch(1);
        Thread holder = new Thread(() -> {
            held.lock();
            locked.countDown();
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                held.unlock();
            }
        });
        holder.start();
        locked.await();
        int[] quietSize = {-1};
        Thread sizer = new Thread(() -> quietSize[0] = quiet.size());
        sizer.start();
        sizer.join(5000);
        check.accept(quietSize[0] == 1000 && quiet.lockedSizes == 0,
                     "size() of a quiet map blocked on a held segment lock or miscounted ("
                     + quietSize[0] + ")");
        release.countDown();
        holder.join();
        sizer.join();

        /* two writers on disjoint keys; size() meanwhile until one call had to lock everything */
        final int keysPerThread = 4096;
        Java7Map<Long, Long> shared2 = new Java7Map<>(16);
        long[] net = new long[2];
        boolean[][] present = new boolean[2][keysPerThread];
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        Thread[] writers = new Thread[2];
        for (int t = 0; t < 2; t++) {
            final int id = t;
            writers[t] = new Thread(() -> {
                SplitMix64 r = new SplitMix64(id + 1);
                for (long n = 0; n < 200_000 || !stop.get(); n++) {
                    int i = (int) Long.remainderUnsigned(r.next(), keysPerThread);
                    Long key = Long.valueOf(2L * i + id);
                    if (present[id][i]) {
                        present[id][i] = shared2.remove(key) == null;
                        net[id] -= present[id][i] ? 0 : 1;
                    } else {
                        present[id][i] = shared2.put(key, key) == null;
                        net[id] += present[id][i] ? 1 : 0;
                    }
                }
            });
            writers[t].start();
        }
        int outOfRange = 0;
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (shared2.lockedSizes == 0 && System.nanoTime() < deadline) {
            int s = shared2.size();
            outOfRange += s < 0 || s > 2 * keysPerThread ? 1 : 0;
        }
        stop.set(true);
        for (Thread w : writers)
            w.join();
        check.accept(shared2.lockedSizes > 0, "size() never locked the segments under 2 writers in 5 s");
        check.accept(outOfRange == 0, outOfRange + " sizes out of [0, " + 2 * keysPerThread + "]");
        int wrong = 0;
        for (int t = 0; t < 2; t++)
            for (int i = 0; i < keysPerThread; i++)
                wrong += (shared2.get(Long.valueOf(2L * i + t)) != null) == present[t][i] ? 0 : 1;
        check.accept(wrong == 0 && shared2.size() == net[0] + net[1],
                     "after 2 writers: size " + shared2.size() + ", want " + (net[0] + net[1])
                     + "; " + wrong + " keys wrong");
        return result;
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
                     : name.equals("rwlock") ? new RwLock(keys)
                     : name.equals("segments") ? new Segments(keys) : null;
        if (map == null)
            fail("map must be chm, sync, rwlock or segments, not '" + name + "'");
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

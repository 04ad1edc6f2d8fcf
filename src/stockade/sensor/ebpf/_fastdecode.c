/* The eBPF sensor's hot path in C: walking the ring buffer and decoding syscall records.
 *
 * Built at install time by scripts/build-native.sh (gcc, CPython's headers); optional: without it
 * the pure-Python path (ringbuf.py, events.py) runs, and the tests check that both give identical
 * events on the same records (tests/sensor/test_ebpf_decode_native.py).
 *
 * What it does natively is exactly what stockade.sensor.ebpf.events.Decoder.decode does for a
 * syscall record (kind 1) with a known plan: the header fields, the result, the named arguments,
 * the open and path families' fields, and the process's exec fields. The other families' fields
 * are added by the plan's Python dress function, called with the same arguments as from Python;
 * every other record (exec, fork, exit, unknown syscalls, anything odd) is handed to the Python
 * decoder as a whole. The plans, the caches and the process table are the Python decoder's own
 * objects (see Decoder.native in events.py), so both paths share one state.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <limits.h>
#include <string.h>

#define HDR_SIZE 144
#define EV_SYSCALL 1
#define HF_NOVEL 0x100 /* above the kind: the operation was new to its watched cgroup (_novel True) */
#define HF_SEEN 0x200  /* a watched cgroup's repeat (_novel False) */
#define RB_BUSY (1u << 31)
#define RB_DISCARD (1u << 30)
#define RB_HDR 8
#define T_STR 0x10
#define T_DIR 0x20
#define MAX_BLOBS 32
#define MAX_ARGS 6
#define COMM_SLOTS 256
#define UNSET_LOGINUID 4294967295u

enum { A_INT = 0, A_INT32 = 1, A_STR = 2, A_PATH = 3 };
enum { D_NONE = 0, D_OPEN = 1, D_PATH = 2, D_PY = 3 };

/* header field offsets (struct ev_hdr, little-endian, packed as HDR in events.py) */
#define O_KIND 0
#define O_NR 2
#define O_TS 8
#define O_PID 16
#define O_TID 20
#define O_PPID 24
#define O_VPID 28
#define O_UID 32
#define O_GID 36
#define O_LOGINUID 40
#define O_TTY 44
#define O_CGID 48
#define O_MNTNS 56
#define O_PIDNS 60
#define O_RET 64
#define O_ARGS 72
#define O_START 120
#define O_COMM 128

typedef struct {
    int slot;
    int how;
    int tag;
    PyObject *key; /* borrowed from the plan tuple, which the walker holds */
} ArgPlan;

typedef struct {
    PyObject *name; /* evt.type */
    int wanted;
    int nargs;
    ArgPlan args[MAX_ARGS];
    int dress;
    int flags_slot;
    int path2;
    PyObject *py_dress; /* D_PY: dress(ev, plan, args, ret, blobs, paths) */
    PyObject *plan;     /* the Python _Plan */
} Plan;

typedef struct {
    char key[16];
    PyObject *val;
} CommSlot;

typedef struct {
    PyObject_HEAD
    PyObject *plans_src; /* dict nr -> plan tuple (kept alive: Plan borrows from it) */
    Plan *plans;         /* indexed by nr, name NULL where none */
    int nplans;
    PyObject *procs;        /* dict pid -> _Proc (the Python decoder's) */
    PyObject *open_flags;   /* dict flags -> (str, bool, bool, bool) (the Python cache) */
    PyObject *open_flags_fn; /* flags -> that tuple, filling the cache */
    PyObject *errnames;     /* errno.errorcode */
    PyObject *join;         /* _join(dir_raw, rel) */
    PyObject *normalize;    /* _normalize(path) */
    long long boot;
    CommSlot comm[COMM_SLOTS];
} Walker;

static PyObject *s_fields, *s_notimpl;
static PyObject *k_type, *k_dir, *k_time, *k_pid, *k_tid, *k_ppid, *k_vpid, *k_uid, *k_gid, *k_loginuid,
    *k_name, *k_tty, *k_cgid, *k_mntns, *k_pidns, *k_start, *k_rawres, *k_res, *k_failed, *k_argflags,
    *k_isread, *k_iswrite, *k_iscreate, *k_fdname, *k_fdtype, *k_fdtypechar, *k_fdnum, *k_fsname,
    *k_fssource, *k_fstarget, *k_fdnameraw, *k_novel;
static PyObject *v_lt, *v_success, *v_file, *v_f, *v_na;

static inline uint16_t rd16(const unsigned char *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t rd32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t rd64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* ev[key] = val, stealing the reference to val; -1 on error */
static inline int set_steal(PyObject *ev, PyObject *key, PyObject *val) {
    if (val == NULL)
        return -1;
    int r = PyDict_SetItem(ev, key, val);
    Py_DECREF(val);
    return r;
}

static PyObject *decode_str(const unsigned char *p, Py_ssize_t n) {
    return PyUnicode_DecodeUTF8((const char *)p, n, "surrogateescape");
}

static PyObject *comm_str(Walker *w, const unsigned char *raw) {
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ raw[i]) * 16777619u;
    CommSlot *s = &w->comm[h & (COMM_SLOTS - 1)];
    if (s->val != NULL && memcmp(s->key, raw, 16) == 0) {
        Py_INCREF(s->val);
        return s->val;
    }
    PyObject *v = decode_str(raw, (Py_ssize_t)strnlen((const char *)raw, 16));
    if (v == NULL)
        return NULL;
    Py_XSETREF(s->val, v);
    memcpy(s->key, raw, 16);
    Py_INCREF(v);
    return v;
}

/* the shown value of an integer argument (as _syscall in events.py) */
static PyObject *int_arg(uint64_t v, int how) {
    if (v >= (1ULL << 63))
        return PyLong_FromLongLong((long long)v);
    if (how == A_INT32 && v >= (1ULL << 31)) {
        if (v & 0x80000000ULL)
            return PyLong_FromLongLong((long long)(v & 0xFFFFFFFFULL) - (1LL << 32));
        return PyLong_FromUnsignedLongLong(v & 0xFFFFFFFFULL);
    }
    return PyLong_FromUnsignedLongLong(v);
}

typedef struct {
    int tag;
    Py_ssize_t start, stop;
} Blob;

/* the last blob with `tag` (later ones win, as in the Python dict), or NULL */
static const Blob *find_blob(const Blob *b, int n, int tag) {
    for (int i = n - 1; i >= 0; i--)
        if (b[i].tag == tag)
            return &b[i];
    return NULL;
}

static PyObject *blob_bytes(const unsigned char *buf, const Blob *b) {
    return PyBytes_FromStringAndSize((const char *)buf + b->start, b->stop - b->start);
}

static int open_fields(Walker *w, PyObject *ev, uint64_t flags, long long ret, PyObject *path0) {
    PyObject *fl = PyLong_FromUnsignedLongLong(flags);
    if (fl == NULL)
        return -1;
    PyObject *t = PyDict_GetItemWithError(w->open_flags, fl);
    if (t != NULL) {
        Py_INCREF(t);
    } else if (PyErr_Occurred()) {
        Py_DECREF(fl);
        return -1;
    } else {
        t = PyObject_CallOneArg(w->open_flags_fn, fl);
    }
    Py_DECREF(fl);
    if (t == NULL)
        return -1;
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 4) {
        Py_DECREF(t);
        PyErr_SetString(PyExc_TypeError, "open flags: expected a 4-tuple");
        return -1;
    }
    int r = PyDict_SetItem(ev, k_argflags, PyTuple_GET_ITEM(t, 0)) || PyDict_SetItem(ev, k_isread, PyTuple_GET_ITEM(t, 1)) ||
            PyDict_SetItem(ev, k_iswrite, PyTuple_GET_ITEM(t, 2)) ||
            PyDict_SetItem(ev, k_iscreate, PyTuple_GET_ITEM(t, 3));
    Py_DECREF(t);
    if (r)
        return -1;
    if (path0 != NULL && PyDict_SetItem(ev, k_fdname, path0))
        return -1;
    if (PyDict_SetItem(ev, k_fdtype, v_file) || PyDict_SetItem(ev, k_fdtypechar, v_f))
        return -1;
    if (ret >= 0 && set_steal(ev, k_fdnum, PyLong_FromLongLong(ret)))
        return -1;
    return 0;
}

static int path_fields(PyObject *ev, PyObject *paths, int path2) {
    Py_ssize_t n = PyList_GET_SIZE(paths);
    if (n == 0)
        return 0;
    PyObject *p0 = PyList_GET_ITEM(paths, 0);
    if (PyDict_SetItem(ev, k_fsname, p0) || PyDict_SetItem(ev, k_fdname, p0))
        return -1;
    if (path2 && n > 1) {
        if (PyDict_SetItem(ev, k_fssource, p0) || PyDict_SetItem(ev, k_fstarget, PyList_GET_ITEM(paths, 1)))
            return -1;
    }
    return 0;
}

/* the Python dress of a family the C code does not know: dress(ev, plan, args, ret, blobs, paths) */
static int py_dress(const Plan *pl, PyObject *ev, const unsigned char *buf, const Blob *blobs, int nblobs,
                    const uint64_t *args, long long ret, PyObject *paths) {
    PyObject *targs = NULL, *bd = NULL, *pret = NULL, *res = NULL;
    int rc = -1;
    targs = PyTuple_New(6);
    if (targs == NULL)
        goto done;
    for (int i = 0; i < 6; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(args[i]);
        if (v == NULL)
            goto done;
        PyTuple_SET_ITEM(targs, i, v);
    }
    bd = PyDict_New();
    if (bd == NULL)
        goto done;
    for (int i = 0; i < nblobs; i++) {
        PyObject *k = PyLong_FromLong(blobs[i].tag);
        PyObject *v = k ? blob_bytes(buf, &blobs[i]) : NULL;
        int r = (k && v) ? PyDict_SetItem(bd, k, v) : -1;
        Py_XDECREF(k);
        Py_XDECREF(v);
        if (r)
            goto done;
    }
    pret = PyLong_FromLongLong(ret);
    if (pret == NULL)
        goto done;
    PyObject *argv[6] = {ev, pl->plan, targs, pret, bd, paths};
    res = PyObject_Vectorcall(pl->py_dress, argv, 6, NULL);
    if (res != NULL)
        rc = 0;
done:
    Py_XDECREF(targs);
    Py_XDECREF(bd);
    Py_XDECREF(pret);
    Py_XDECREF(res);
    return rc;
}

/* the header fields every event has; -1 on error */
static int header_fields(Walker *w, PyObject *ev, const Plan *pl, const unsigned char *h, PyObject *pid) {
    uint32_t loginuid = rd32(h + O_LOGINUID);
    if (PyDict_SetItem(ev, k_type, pl->name) || PyDict_SetItem(ev, k_dir, v_lt) ||
        set_steal(ev, k_time, PyLong_FromLongLong((long long)rd64(h + O_TS) + w->boot)) ||
        PyDict_SetItem(ev, k_pid, pid) || set_steal(ev, k_tid, PyLong_FromUnsignedLong(rd32(h + O_TID))) ||
        set_steal(ev, k_ppid, PyLong_FromUnsignedLong(rd32(h + O_PPID))) ||
        set_steal(ev, k_vpid, PyLong_FromUnsignedLong(rd32(h + O_VPID))) ||
        set_steal(ev, k_uid, PyLong_FromUnsignedLong(rd32(h + O_UID))) ||
        set_steal(ev, k_gid, PyLong_FromUnsignedLong(rd32(h + O_GID))) ||
        set_steal(ev, k_loginuid,
                  loginuid == UNSET_LOGINUID ? PyLong_FromLong(-1) : PyLong_FromUnsignedLong(loginuid)) ||
        set_steal(ev, k_name, comm_str(w, h + O_COMM)) ||
        set_steal(ev, k_tty, PyLong_FromUnsignedLong(rd32(h + O_TTY))) ||
        set_steal(ev, k_cgid, PyLong_FromUnsignedLongLong(rd64(h + O_CGID))) ||
        set_steal(ev, k_mntns, PyLong_FromUnsignedLong(rd32(h + O_MNTNS))) ||
        set_steal(ev, k_pidns, PyLong_FromUnsignedLong(rd32(h + O_PIDNS))) ||
        set_steal(ev, k_start, PyLong_FromLongLong((long long)rd64(h + O_START) + w->boot)))
        return -1;
    return 0;
}

static int result_fields(Walker *w, PyObject *ev, long long ret) {
    if (set_steal(ev, k_rawres, PyLong_FromLongLong(ret)))
        return -1;
    if (ret >= 0) {
        if (PyDict_SetItem(ev, k_res, v_success))
            return -1;
    } else {
        PyObject *e = PyLong_FromLongLong(-ret);
        if (e == NULL)
            return -1;
        PyObject *name = PyDict_GetItemWithError(w->errnames, e);
        Py_DECREF(e);
        if (name != NULL) {
            if (PyDict_SetItem(ev, k_res, name))
                return -1;
        } else if (PyErr_Occurred()) {
            return -1;
        } else if (set_steal(ev, k_res, PyUnicode_FromFormat("%lld", ret))) {
            return -1;
        }
    }
    return PyDict_SetItem(ev, k_failed, ret < 0 ? Py_True : Py_False);
}

/* whether an absolute path may not be normalized: "//", "/." or a trailing "/" (as _syscall tests
 * on the decoded string: these are ASCII, so the same on the bytes) */
static int needs_normalizing(const unsigned char *p, Py_ssize_t n) {
    if (p[n - 1] == '/')
        return 1;
    for (Py_ssize_t i = 0; i + 1 < n; i++)
        if (p[i] == '/' && (p[i + 1] == '/' || p[i + 1] == '.'))
            return 1;
    return 0;
}

/* the named arguments; their paths appended to `paths` */
static int arg_fields(Walker *w, PyObject *ev, const Plan *pl, const unsigned char *buf, const Blob *blobs, int nblobs,
                      const uint64_t *args, PyObject *paths) {
    for (int i = 0; i < pl->nargs; i++) {
        const ArgPlan *a = &pl->args[i];
        if (a->how <= A_INT32) {
            if (set_steal(ev, a->key, int_arg(args[a->slot], a->how)))
                return -1;
            continue;
        }
        const Blob *b = find_blob(blobs, nblobs, a->tag);
        if (b == NULL) {
            if (PyDict_SetItem(ev, a->key, args[a->slot] == 0 ? Py_None : v_na))
                return -1;
            continue;
        }
        PyObject *s = decode_str(buf + b->start, b->stop - b->start);
        if (s == NULL)
            return -1;
        if (PyDict_SetItem(ev, a->key, s)) {
            Py_DECREF(s);
            return -1;
        }
        if (a->how == A_PATH) {
            /* as _syscall: a relative path joined to its directory, an absolute one normalized
             * when it may need it; fd.nameraw keeps the first path as given when that made a new one */
            const unsigned char *r0 = buf + b->start;
            Py_ssize_t rn = b->stop - b->start;
            PyObject *p = s;
            const Blob *d;
            if (!(rn > 0 && r0[0] == '/')) {
                if ((d = find_blob(blobs, nblobs, a->tag - T_STR + T_DIR)) != NULL) {
                    PyObject *draw = blob_bytes(buf, d);
                    p = draw ? PyObject_CallFunctionObjArgs(w->join, draw, s, NULL) : NULL;
                    Py_XDECREF(draw);
                }
            } else if (needs_normalizing(r0, rn)) {
                p = PyObject_CallOneArg(w->normalize, s);
            }
            if (p == NULL) {
                Py_DECREF(s);
                return -1;
            }
            int r = 0;
            if (p != s) {
                if (PyList_GET_SIZE(paths) == 0)
                    r = PyDict_SetItem(ev, k_fdnameraw, s);
                Py_DECREF(s);
            }
            if (r == 0)
                r = PyList_Append(paths, p);
            Py_DECREF(p);
            if (r)
                return -1;
        } else {
            Py_DECREF(s);
        }
    }
    return 0;
}

/* One syscall record -> a new event (*out), or *out = NULL when it is not wanted. Returns 1 when
 * handled, 0 when the record is for the Python decoder, -1 on error. */
static int decode_one(Walker *w, const unsigned char *buf, Py_ssize_t buflen, Py_ssize_t off, Py_ssize_t size,
                      PyObject **out) {
    *out = NULL;
    if (off < 0 || off + HDR_SIZE > buflen)
        return 0;
    const unsigned char *h = buf + off;
    unsigned kind = rd16(h + O_KIND);
    if ((kind & 0xff) != EV_SYSCALL)
        return 0;
    unsigned nr = rd16(h + O_NR);
    if ((int)nr >= w->nplans || w->plans[nr].name == NULL)
        return 0;
    const Plan *pl = &w->plans[nr];
    if (!pl->wanted)
        return 1;
    Blob blobs[MAX_BLOBS];
    int nblobs = 0;
    Py_ssize_t p = off + HDR_SIZE, end = off + size;
    while (p + 4 <= end) {
        if (p + 4 > buflen || nblobs == MAX_BLOBS)
            return 0; /* odd: the Python decoder decides */
        Py_ssize_t q = p + 4, ln = rd16(buf + p + 2);
        Py_ssize_t start = q < buflen ? q : buflen;
        Py_ssize_t stop = q + ln < buflen ? q + ln : buflen;
        blobs[nblobs].tag = rd16(buf + p);
        blobs[nblobs].start = start;
        blobs[nblobs].stop = stop > start ? stop : start;
        nblobs++;
        p = (q + ln + 3) & ~(Py_ssize_t)3;
    }
    uint64_t args[6];
    for (int i = 0; i < 6; i++)
        args[i] = rd64(h + O_ARGS + 8 * i);
    long long ret = (long long)rd64(h + O_RET);
    if (ret == LLONG_MIN || rd64(h + O_TS) > (uint64_t)(LLONG_MAX / 2) || rd64(h + O_START) > (uint64_t)(LLONG_MAX / 2))
        return 0; /* values the Python decoder handles in arbitrary precision */
    PyObject *pid = PyLong_FromUnsignedLong(rd32(h + O_PID));
    if (pid == NULL)
        return -1;
#if PY_VERSION_HEX < 0x030D0000
    PyObject *ev = _PyDict_NewPresized(40);
#else
    PyObject *ev = PyDict_New();
#endif
    PyObject *paths = PyList_New(0);
    if (ev == NULL || paths == NULL || header_fields(w, ev, pl, h, pid) ||
        ((kind & (HF_NOVEL | HF_SEEN)) && PyDict_SetItem(ev, k_novel, (kind & HF_NOVEL) ? Py_True : Py_False)) ||
        result_fields(w, ev, ret) ||
        arg_fields(w, ev, pl, buf, blobs, nblobs, args, paths))
        goto fail;
    switch (pl->dress) {
    case D_OPEN:
        if (open_fields(w, ev, args[pl->flags_slot], ret, PyList_GET_SIZE(paths) ? PyList_GET_ITEM(paths, 0) : NULL))
            goto fail;
        break;
    case D_PATH:
        if (path_fields(ev, paths, pl->path2))
            goto fail;
        break;
    case D_PY:
        if (py_dress(pl, ev, buf, blobs, nblobs, args, ret, paths))
            goto fail;
        break;
    default:
        break;
    }
    PyObject *proc = PyDict_GetItemWithError(w->procs, pid);
    if (proc != NULL) {
        PyObject *fields = PyObject_GetAttr(proc, s_fields);
        int r = fields ? PyDict_Update(ev, fields) : -1;
        Py_XDECREF(fields);
        if (r)
            goto fail;
    } else if (PyErr_Occurred()) {
        goto fail;
    }
    Py_DECREF(pid);
    Py_DECREF(paths);
    *out = ev;
    return 1;
fail:
    Py_DECREF(pid);
    Py_XDECREF(ev);
    Py_XDECREF(paths);
    return -1;
}

/* the exception being raised, normalised, with its traceback; the error indicator cleared */
static PyObject *raised_exception(void) {
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    if (v != NULL && tb != NULL)
        PyException_SetTraceback(v, tb);
    Py_XDECREF(t);
    Py_XDECREF(tb);
    return v;
}

/* -- the type ------------------------------------------------------------------------------- */

static void walker_clear_plans(Walker *w) {
    PyMem_Free(w->plans);
    w->plans = NULL;
    w->nplans = 0;
}

static int walker_traverse(Walker *w, visitproc visit, void *arg) {
    Py_VISIT(w->plans_src);
    Py_VISIT(w->procs);
    Py_VISIT(w->open_flags);
    Py_VISIT(w->open_flags_fn);
    Py_VISIT(w->errnames);
    Py_VISIT(w->join);
    Py_VISIT(w->normalize);
    return 0;
}

static int walker_clear(Walker *w) {
    walker_clear_plans(w);
    Py_CLEAR(w->plans_src);
    Py_CLEAR(w->procs);
    Py_CLEAR(w->open_flags);
    Py_CLEAR(w->open_flags_fn);
    Py_CLEAR(w->errnames);
    Py_CLEAR(w->join);
    Py_CLEAR(w->normalize);
    for (int i = 0; i < COMM_SLOTS; i++)
        Py_CLEAR(w->comm[i].val);
    return 0;
}

static void walker_dealloc(Walker *w) {
    PyObject_GC_UnTrack(w);
    walker_clear(w);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

/* plan tuple: (name, wanted, ((slot, key, how, tag), ...), dress kind, flags slot, path2, py dress, plan) */
static int load_plan(Plan *pl, PyObject *t) {
    PyObject *args;
    int wanted, dress, flags_slot, path2;
    if (!PyArg_ParseTuple(t, "UpO!iipOO", &pl->name, &wanted, &PyTuple_Type, &args, &dress, &flags_slot, &path2,
                          &pl->py_dress, &pl->plan))
        return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    if (n > MAX_ARGS || dress < D_NONE || dress > D_PY || flags_slot >= 6 || (dress == D_OPEN && flags_slot < 0)) {
        PyErr_SetString(PyExc_ValueError, "bad plan");
        return -1;
    }
    pl->wanted = wanted;
    pl->dress = dress;
    pl->flags_slot = flags_slot;
    pl->path2 = path2;
    pl->nargs = (int)n;
    for (Py_ssize_t i = 0; i < n; i++) {
        ArgPlan *a = &pl->args[i];
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(args, i), "iUii", &a->slot, &a->key, &a->how, &a->tag))
            return -1;
        if (a->slot < 0 || a->slot >= 6 || a->how < A_INT || a->how > A_PATH) {
            PyErr_SetString(PyExc_ValueError, "bad argument plan");
            return -1;
        }
    }
    return 0;
}

static int walker_init(Walker *w, PyObject *a, PyObject *kw) {
    static char *names[] = {"plans", "procs",    "boot", "open_flags", "open_flags_fn",
                            "errnames", "join", "normalize", NULL};
    PyObject *plans, *procs, *open_flags, *fn, *errnames, *join, *normalize;
    long long boot;
    if (!PyArg_ParseTupleAndKeywords(a, kw, "O!O!LO!OO!OO", names, &PyDict_Type, &plans, &PyDict_Type, &procs, &boot,
                                     &PyDict_Type, &open_flags, &fn, &PyDict_Type, &errnames, &join, &normalize))
        return -1;
    if (boot < 0 || boot > LLONG_MAX / 2) {
        PyErr_SetString(PyExc_ValueError, "boot time out of range");
        return -1;
    }
    walker_clear(w);
    int maxnr = -1;
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (PyDict_Next(plans, &pos, &k, &v)) {
        long nr = PyLong_AsLong(k);
        if (nr == -1 && PyErr_Occurred())
            return -1;
        if (nr < 0 || nr > 4095) {
            PyErr_SetString(PyExc_ValueError, "syscall number out of range");
            return -1;
        }
        if (nr > maxnr)
            maxnr = (int)nr;
    }
    w->plans = PyMem_Calloc((size_t)maxnr + 1, sizeof(Plan));
    if (w->plans == NULL && maxnr >= 0) {
        PyErr_NoMemory();
        return -1;
    }
    w->nplans = maxnr + 1;
    pos = 0;
    while (PyDict_Next(plans, &pos, &k, &v)) {
        Plan *pl = &w->plans[PyLong_AsLong(k)];
        if (load_plan(pl, v)) {
            walker_clear_plans(w);
            return -1;
        }
    }
    Py_INCREF(plans);
    w->plans_src = plans;
    Py_INCREF(procs);
    w->procs = procs;
    Py_INCREF(open_flags);
    w->open_flags = open_flags;
    Py_INCREF(fn);
    w->open_flags_fn = fn;
    Py_INCREF(errnames);
    w->errnames = errnames;
    Py_INCREF(join);
    w->join = join;
    Py_INCREF(normalize);
    w->normalize = normalize;
    w->boot = boot;
    return 0;
}

static PyObject *walker_decode(Walker *w, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t off, size;
    Py_buffer view;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "decode(buffer, offset, size)");
        return NULL;
    }
    off = PyLong_AsSsize_t(args[1]);
    size = PyLong_AsSsize_t(args[2]);
    if (PyErr_Occurred())
        return NULL;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE))
        return NULL;
    PyObject *ev;
    int r = decode_one(w, view.buf, view.len, off, size, &ev);
    PyBuffer_Release(&view);
    if (r < 0)
        return NULL;
    if (r == 0) {
        Py_INCREF(s_notimpl);
        return s_notimpl;
    }
    if (ev == NULL)
        Py_RETURN_NONE;
    return ev;
}

/* consume(data, cons_addr, prod_addr, mask, max_records, decode, out, on_error) -> records read:
 * RingBuffer.consume's walk, decoding here what decode_one handles and handing the rest to
 * `decode(data, off, size)` (the Python decoder). */
static PyObject *walker_consume(Walker *w, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "consume(data, cons_addr, prod_addr, mask, max_records, decode, out, on_error)");
        return NULL;
    }
    PyObject *data = args[0], *pydecode = args[5], *out = args[6], *on_error = args[7];
    uint64_t *cons_p = PyLong_AsVoidPtr(args[1]);
    uint64_t *prod_p = PyLong_AsVoidPtr(args[2]);
    unsigned long long mask = PyLong_AsUnsignedLongLong(args[3]);
    Py_ssize_t max_records = PyLong_AsSsize_t(args[4]);
    if (PyErr_Occurred())
        return NULL;
    if (!PyList_Check(out) || cons_p == NULL || prod_p == NULL) {
        PyErr_SetString(PyExc_TypeError, "consume: bad arguments");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE))
        return NULL;
    const unsigned char *buf = view.buf;
    uint64_t cons = __atomic_load_n(cons_p, __ATOMIC_RELAXED);
    uint64_t prod = __atomic_load_n(prod_p, __ATOMIC_ACQUIRE);
    Py_ssize_t n = 0;
    int failed = 0;
    while (cons < prod && n < max_records) {
        Py_ssize_t off = (Py_ssize_t)(cons & mask);
        if (off + RB_HDR > view.len)
            break;
        uint32_t hlen = __atomic_load_n((const uint32_t *)(buf + off), __ATOMIC_ACQUIRE);
        if (hlen & RB_BUSY)
            break;
        Py_ssize_t size = hlen & ~(RB_BUSY | RB_DISCARD);
        uint64_t nxt = cons + (((uint64_t)size + RB_HDR + 7) & ~7ULL);
        if (!(hlen & RB_DISCARD)) {
            n++;
            PyObject *ev = NULL;
            int r = decode_one(w, buf, view.len, off + RB_HDR, size, &ev);
            if (r == 0) {
                PyObject *a[3] = {data, NULL, NULL};
                a[1] = PyLong_FromSsize_t(off + RB_HDR);
                a[2] = PyLong_FromSsize_t(size);
                if (a[1] && a[2]) {
                    ev = PyObject_Vectorcall(pydecode, a, 3, NULL);
                    r = ev ? 1 : -1;
                } else {
                    r = -1;
                }
                Py_XDECREF(a[1]);
                Py_XDECREF(a[2]);
                if (ev == Py_None)
                    Py_CLEAR(ev);
            }
            if (r < 0) {
                if (on_error == Py_None) {
                    cons = nxt;
                    failed = 1;
                    break;
                }
                PyObject *exc = raised_exception();
                PyObject *res = exc ? PyObject_CallOneArg(on_error, exc) : NULL;
                Py_XDECREF(exc);
                if (res == NULL) {
                    failed = 1;
                    break;
                }
                Py_DECREF(res);
            } else if (ev != NULL) {
                int ar = PyList_Append(out, ev);
                Py_DECREF(ev);
                if (ar) {
                    failed = 1;
                    break;
                }
            }
        }
        cons = nxt;
        if (cons >= prod)
            prod = __atomic_load_n(prod_p, __ATOMIC_ACQUIRE);
    }
    __atomic_store_n(cons_p, cons, __ATOMIC_RELEASE);
    PyBuffer_Release(&view);
    if (failed)
        return NULL;
    return PyLong_FromSsize_t(n);
}

static PyMethodDef walker_methods[] = {
    {"decode", (PyCFunction)(void (*)(void))walker_decode, METH_FASTCALL,
     "decode(buffer, offset, size) -> event, None (not wanted) or NotImplemented (for the Python decoder)"},
    {"consume", (PyCFunction)(void (*)(void))walker_consume, METH_FASTCALL,
     "consume(data, cons_addr, prod_addr, mask, max_records, decode, out, on_error) -> records read"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject WalkerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "stockade.sensor.ebpf._fastdecode.Walker",
    .tp_basicsize = sizeof(Walker),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The ring-buffer walk and syscall decoding of a Decoder, in C.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)walker_init,
    .tp_dealloc = (destructor)walker_dealloc,
    .tp_traverse = (traverseproc)walker_traverse,
    .tp_clear = (inquiry)walker_clear,
    .tp_methods = walker_methods,
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_fastdecode", "The eBPF sensor's ring walk and syscall decoding in C.", -1, NULL,
};

#define INTERN(var, text)                                                                                            \
    do {                                                                                                             \
        if ((var = PyUnicode_InternFromString(text)) == NULL)                                                        \
            return NULL;                                                                                             \
    } while (0)

PyMODINIT_FUNC PyInit__fastdecode(void) {
    INTERN(s_fields, "fields");
    INTERN(k_type, "evt.type");
    INTERN(k_dir, "evt.dir");
    INTERN(k_time, "evt.time");
    INTERN(k_pid, "proc.pid");
    INTERN(k_tid, "thread.tid");
    INTERN(k_ppid, "proc.ppid");
    INTERN(k_vpid, "proc.vpid");
    INTERN(k_uid, "user.uid");
    INTERN(k_gid, "group.gid");
    INTERN(k_loginuid, "user.loginuid");
    INTERN(k_name, "proc.name");
    INTERN(k_tty, "proc.tty");
    INTERN(k_cgid, "_cgroup_id");
    INTERN(k_mntns, "_mntns");
    INTERN(k_pidns, "_pidns");
    INTERN(k_start, "_start_ns");
    INTERN(k_rawres, "evt.rawres");
    INTERN(k_res, "evt.res");
    INTERN(k_failed, "evt.failed");
    INTERN(k_argflags, "evt.arg.flags");
    INTERN(k_isread, "evt.is_open_read");
    INTERN(k_iswrite, "evt.is_open_write");
    INTERN(k_iscreate, "evt.is_open_create");
    INTERN(k_fdname, "fd.name");
    INTERN(k_fdtype, "fd.type");
    INTERN(k_fdtypechar, "fd.typechar");
    INTERN(k_fdnum, "fd.num");
    INTERN(k_fsname, "fs.path.name");
    INTERN(k_fssource, "fs.path.source");
    INTERN(k_fstarget, "fs.path.target");
    INTERN(k_fdnameraw, "fd.nameraw");
    INTERN(k_novel, "_novel");
    INTERN(v_lt, "<");
    INTERN(v_success, "SUCCESS");
    INTERN(v_file, "file");
    INTERN(v_f, "f");
    INTERN(v_na, "<NA>");
    s_notimpl = Py_NotImplemented;
    if (PyType_Ready(&WalkerType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&moddef);
    if (m == NULL)
        return NULL;
    Py_INCREF(&WalkerType);
    if (PyModule_AddObject(m, "Walker", (PyObject *)&WalkerType) < 0) {
        Py_DECREF(&WalkerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

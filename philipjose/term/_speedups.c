/* The optional compiled accelerator of philipjose.term: the hot loops of the External Term Format.
 *
 * Theory of operation: two loops, each with an explicit, heap-allocated stack (no C recursion, so
 * a 100,000-deep term costs memory, not C stack), mirroring the pure-Python reference codec in
 * _decode.py and _encode.py byte for byte. This file handles the common tags and types itself and
 * calls back into the Python codec (the helpers handed to setup()) for everything else: rare scalar
 * tags, atoms not seen before, improper lists, maps (past a small fast path), funs, and values of
 * any other Python type. Error messages are the reference codec's: where an error needs its exact
 * wording (encoding), the Python helper that raises it is called.
 *
 * Decoding: every length read off the wire is checked against the bytes that remain before
 * anything is allocated; containers are counted against the caller's budget exactly as the Python
 * loop counts them (nil and the empty map included, the empty tuple not). Malformed input raises
 * DecodeError. Encoding: containers on the stack are held by strong references and every list
 * index is checked against the list's current size, so another thread mutating a list being
 * encoded gets a RuntimeError, never a crash.
 *
 * Threads: both loops let the GIL go every RELEASE_EVERY items (Py_BEGIN_ALLOW_THREADS with an
 * empty body: the objects being built are private to this thread, and nothing is touched while the
 * GIL is released), so a big term coded in a worker thread does not stall the event loop thread.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define RELEASE_EVERY 4096
#define BIG_CHUNK (64 * 1024) /* encoding: binaries at least this long are not copied into parts */
#define ATOM_SLOTS 4096        /* decoding: the C-side cache of recently decoded atoms */
#define MAP_FAST_MAX 256       /* maps under this size are built here (the Python side checks hashes) */
#define MAX_KEY_DEPTH 1000
#define CYCLE_CHECK_DEPTH 1000
#define GC_HOLD_BYTES (64 * 1024) /* decoding this much or more runs with the cyclic GC paused */

/* --- what setup() hands over ------------------------------------------------------------------ */

static PyObject *DecodeError, *EncodeError;
static PyObject *AtomType, *PidType, *ReferenceType;
static PyObject *handlers;      /* list of 256: Python handlers of the rarer scalar tags, or None */
static PyObject *utf8_atoms, *latin1_atoms, *new_atom;
static PyObject *finish_list, *finish_map, *finish_fun, *bad_tag;
static PyObject *atom_cache, *atom_bytes, *big_bytes, *is_byte_string, *utf8_error, *float_error;
static PyObject *encode_other;
static PyObject *str_utf8, *str_latin1, *str_node, *str_id, *str_serial, *str_creation, *str_ids;
static PyObject *empty_tuple;
static int ready = 0;

/* A large decode allocates millions of tracked objects (tuples, lists) and no garbage cycles; the
 * cyclic GC, triggered by the allocations alone, would traverse them again and again (it tripled the
 * time of a 10^6-tuple decode). So it is paused while any large decode runs (the count is kept
 * under the GIL, so decodes in several threads restore it once, when the last one ends). */
static int gc_holders = 0;
static int gc_was_enabled = 0;

static void
gc_hold(void)
{
    if (gc_holders++ == 0) {
        gc_was_enabled = PyGC_Disable();
    }
}

static void
gc_release(void)
{
    if (--gc_holders == 0 && gc_was_enabled) {
        PyGC_Enable();
    }
}

typedef struct {
    Py_ssize_t len;
    PyObject *raw;   /* bytes, owned */
    PyObject *value; /* Atom / True / False, owned */
} AtomSlot;

static AtomSlot utf8_slots[ATOM_SLOTS];
static AtomSlot latin1_slots[ATOM_SLOTS];

static PyObject *
truncated(void)
{
    PyErr_SetString(DecodeError, "truncated term: the input ends inside a term");
    return NULL;
}

static inline uint16_t
rd16(const unsigned char *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t
rd32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t
rd64(const unsigned char *p)
{
    return ((uint64_t)rd32(p) << 32) | rd32(p + 4);
}

/* --- decoding ------------------------------------------------------------------------------- */

/* The atom whose text is raw[0:n] (UTF-8 or Latin-1): a new reference to True, False or an Atom. */
static PyObject *
atom_value(const unsigned char *raw, Py_ssize_t n, int latin1)
{
    AtomSlot *slots = latin1 ? latin1_slots : utf8_slots;
    uint32_t h = 2166136261u;
    for (Py_ssize_t i = 0; i < n; i++) {
        h = (h ^ raw[i]) * 16777619u;
    }
    AtomSlot *slot = &slots[h & (ATOM_SLOTS - 1)];
    if (slot->value != NULL && slot->len == n && memcmp(PyBytes_AS_STRING(slot->raw), raw, n) == 0) {
        Py_INCREF(slot->value);
        return slot->value;
    }
    PyObject *key = PyBytes_FromStringAndSize((const char *)raw, n);
    if (key == NULL) {
        return NULL;
    }
    PyObject *cache = latin1 ? latin1_atoms : utf8_atoms;
    PyObject *value = PyDict_GetItemWithError(cache, key);
    if (value != NULL) {
        Py_INCREF(value);
    } else if (PyErr_Occurred()) {
        Py_DECREF(key);
        return NULL;
    } else {
        value = PyObject_CallFunctionObjArgs(new_atom, key, latin1 ? str_latin1 : str_utf8, cache, NULL);
        if (value == NULL) {
            Py_DECREF(key);
            return NULL;
        }
    }
    Py_XDECREF(slot->raw);
    Py_XDECREF(slot->value);
    slot->len = n;
    slot->raw = key;
    Py_INCREF(value);
    slot->value = value;
    return value;
}

/* Any of the four atom tags at *pos: a new reference to True, False or an Atom. */
static PyObject *
read_atom(const unsigned char *buf, Py_ssize_t end, Py_ssize_t *pos)
{
    Py_ssize_t p = *pos;
    if (p >= end) {
        return truncated();
    }
    unsigned char tag = buf[p];
    Py_ssize_t n;
    if (tag == 119 || tag == 115) {
        if (p + 2 > end) {
            return truncated();
        }
        n = buf[p + 1];
        p += 2;
    } else if (tag == 118 || tag == 100) {
        if (p + 3 > end) {
            return truncated();
        }
        n = rd16(buf + p + 1);
        p += 3;
    } else {
        PyErr_Format(DecodeError, "expected an atom, found tag %d", (int)tag);
        return NULL;
    }
    if (n > end - p) {
        return truncated();
    }
    PyObject *value = atom_value(buf + p, n, tag < 118);
    if (value != NULL) {
        *pos = p + n;
    }
    return value;
}

/* An Atom (never True/False): what node names, modules and functions are. */
static PyObject *
read_node(const unsigned char *buf, Py_ssize_t end, Py_ssize_t *pos)
{
    PyObject *value = read_atom(buf, end, pos);
    if (value == Py_True || value == Py_False) {
        const char *text = value == Py_True ? "true" : "false";
        Py_DECREF(value);
        PyObject *s = PyUnicode_FromString(text);
        if (s == NULL) {
            return NULL;
        }
        value = PyObject_CallOneArg(AtomType, s);
        Py_DECREF(s);
    }
    return value;
}

static PyObject *
call_handler(PyObject *buffer, Py_ssize_t *pos, PyObject *handler)
{
    PyObject *at = PyLong_FromSsize_t(*pos);
    if (at == NULL) {
        return NULL;
    }
    PyObject *result = PyObject_CallFunctionObjArgs(handler, buffer, at, NULL);
    Py_DECREF(at);
    if (result == NULL) {
        return NULL;
    }
    if (!PyTuple_CheckExact(result) || PyTuple_GET_SIZE(result) != 2) {
        Py_DECREF(result);
        PyErr_SetString(PyExc_SystemError, "a term handler did not return (value, pos)");
        return NULL;
    }
    Py_ssize_t next = PyLong_AsSsize_t(PyTuple_GET_ITEM(result, 1));
    if (next == -1 && PyErr_Occurred()) {
        Py_DECREF(result);
        return NULL;
    }
    PyObject *value = PyTuple_GET_ITEM(result, 0);
    Py_INCREF(value);
    Py_DECREF(result);
    *pos = next;
    return value;
}

enum { D_TUPLE = 1, D_LIST, D_MAP, D_FUN };

typedef struct {
    int kind;
    PyObject *obj;   /* tuple being filled, or list (list elements, map keys and values, fun items) */
    Py_ssize_t i;    /* values received so far */
    Py_ssize_t n;    /* values to receive (a list's tail included) */
    PyObject *extra; /* funs: the tuple _finish_fun wants */
} DFrame;

static PyObject *
too_many(Py_ssize_t containers)
{
    PyErr_Format(DecodeError, "term builds more than %zd containers (its container budget)", containers);
    return NULL;
}

/* A map from its 2n items: here when small and plain, else the Python side decides. */
static PyObject *
make_map(PyObject *items, int depth_checked)
{
    Py_ssize_t n2 = PyList_GET_SIZE(items);
    if (depth_checked && n2 / 2 < MAP_FAST_MAX) {
        PyObject *d = PyDict_New();
        if (d == NULL) {
            return NULL;
        }
        int ok = 1;
        for (Py_ssize_t k = 0; k < n2; k += 2) {
            if (PyDict_SetItem(d, PyList_GET_ITEM(items, k), PyList_GET_ITEM(items, k + 1)) < 0) {
                Py_DECREF(d);
                if (!PyErr_ExceptionMatches(PyExc_TypeError)) {
                    return NULL;
                }
                PyErr_Clear(); /* an unhashable key: the Python side rebuilds the keys */
                ok = 0;
                break;
            }
        }
        if (ok) {
            if (PyDict_GET_SIZE(d) == n2 / 2) {
                return d;
            }
            Py_DECREF(d); /* keys Python merges (1, 1.0, true): the Python side decodes them strictly */
        }
    }
    return PyObject_CallFunctionObjArgs(finish_map, items, depth_checked ? Py_True : Py_False, NULL);
}

static PyObject *
finish_frame(DFrame *f, PyObject *tail, Py_ssize_t pos)
{
    PyObject *obj = f->obj;
    f->obj = NULL;
    switch (f->kind) {
    case D_TUPLE: {
        /* A tuple of scalars cannot be part of a cycle: untrack it now, as the GC would on its first
         * pass over it (and more: an Atom, a str subclass, is a GC type that holds no references),
         * so that a term of a million such tuples costs the GC nothing. */
        Py_ssize_t n = PyTuple_GET_SIZE(obj);
        for (Py_ssize_t k = 0; k < n; k++) {
            PyObject *e = PyTuple_GET_ITEM(obj, k);
            if (PyObject_IS_GC(e) && (PyObject *)Py_TYPE(e) != AtomType &&
                (!PyTuple_CheckExact(e) || PyObject_GC_IsTracked(e))) {
                return obj;
            }
        }
        PyObject_GC_UnTrack(obj);
        return obj;
    }
    case D_LIST: {
        if (PyList_CheckExact(tail)) {
            if (PyList_GET_SIZE(tail) && PyList_SetSlice(obj, PyList_GET_SIZE(obj), PyList_GET_SIZE(obj), tail) < 0) {
                Py_DECREF(obj);
                return NULL;
            }
            return obj;
        }
        PyObject *result = NULL;
        if (PyList_Append(obj, tail) == 0) {
            result = PyObject_CallOneArg(finish_list, obj);
        }
        Py_DECREF(obj);
        return result;
    }
    case D_MAP: {
        PyObject *result = make_map(obj, f->extra == Py_True);
        Py_DECREF(obj);
        return result;
    }
    default: { /* D_FUN */
        PyObject *at = PyLong_FromSsize_t(pos);
        PyObject *result = NULL;
        if (at != NULL) {
            result = PyObject_CallFunctionObjArgs(finish_fun, obj, f->extra, at, NULL);
            Py_DECREF(at);
        }
        Py_DECREF(obj);
        Py_CLEAR(f->extra);
        return result;
    }
    }
}

/* decode(buf: bytes, pos: int, containers: int) -> (term, end): the body of one term. */
static PyObject *
sp_decode(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!ready) {
        PyErr_SetString(PyExc_RuntimeError, "_speedups.setup() was not called");
        return NULL;
    }
    if (nargs != 3 || !PyBytes_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "decode(buf: bytes, pos: int, containers: int)");
        return NULL;
    }
    PyObject *buffer = args[0];
    const unsigned char *buf = (const unsigned char *)PyBytes_AS_STRING(buffer);
    const Py_ssize_t end = PyBytes_GET_SIZE(buffer);
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred()) {
        return NULL;
    }
    const Py_ssize_t containers = PyLong_AsSsize_t(args[2]);
    if (containers == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (pos < 0) {
        PyErr_Format(DecodeError, "negative offset %zd", pos);
        return NULL;
    }
    Py_ssize_t budget = containers;
    Py_ssize_t cap = 32, sp = 0, peak = 0;
    DFrame *stack = PyMem_Malloc(cap * sizeof(DFrame));
    if (stack == NULL) {
        return PyErr_NoMemory();
    }
    const int held = end - pos >= GC_HOLD_BYTES;
    if (held) {
        gc_hold();
    }
    PyObject *value = NULL;
    unsigned int tick = 0;

#define NEED(k)                    \
    do {                           \
        if ((k) > end - pos) {     \
            truncated();           \
            goto fail;             \
        }                          \
    } while (0)
#define SPEND()                    \
    do {                           \
        if (--budget < 0) {        \
            too_many(containers);  \
            goto fail;             \
        }                          \
    } while (0)
#define PUSH(KIND, OBJ, N, EXTRA)                                             \
    do {                                                                      \
        if (sp + 1 >= cap) {                                                  \
            DFrame *bigger = PyMem_Realloc(stack, 2 * cap * sizeof(DFrame));  \
            if (bigger == NULL) {                                             \
                Py_DECREF(OBJ);                                               \
                Py_XDECREF(EXTRA);                                            \
                PyErr_NoMemory();                                             \
                goto fail;                                                    \
            }                                                                 \
            stack = bigger;                                                   \
            cap *= 2;                                                         \
        }                                                                     \
        sp++;                                                                 \
        stack[sp].kind = (KIND);                                              \
        stack[sp].obj = (OBJ);                                                \
        stack[sp].i = 0;                                                      \
        stack[sp].n = (N);                                                    \
        stack[sp].extra = (EXTRA);                                            \
        if (sp > peak) {                                                      \
            peak = sp;                                                        \
        }                                                                     \
    } while (0)

    for (;;) {
        if (++tick == RELEASE_EVERY) {
            tick = 0;
            Py_BEGIN_ALLOW_THREADS
            Py_END_ALLOW_THREADS
        }
        NEED(1);
        unsigned char tag = buf[pos];
        Py_ssize_t n;
        switch (tag) {
        case 97: /* SMALL_INTEGER_EXT */
            NEED(2);
            value = PyLong_FromLong(buf[pos + 1]);
            pos += 2;
            break;
        case 98: /* INTEGER_EXT */
            NEED(5);
            value = PyLong_FromLong((int32_t)rd32(buf + pos + 1));
            pos += 5;
            break;
        case 109: /* BINARY_EXT */
            NEED(5);
            n = rd32(buf + pos + 1);
            pos += 5;
            NEED(n);
            value = PyBytes_FromStringAndSize((const char *)buf + pos, n);
            pos += n;
            break;
        case 119: /* SMALL_ATOM_UTF8_EXT */
        case 118: /* ATOM_UTF8_EXT */
        case 115: /* SMALL_ATOM_EXT */
        case 100: /* ATOM_EXT */
            value = read_atom(buf, end, &pos);
            break;
        case 70: { /* NEW_FLOAT_EXT */
            NEED(9);
            uint64_t bits = rd64(buf + pos + 1);
            double d;
            memcpy(&d, &bits, 8);
            if (!isfinite(d)) {
                PyErr_SetString(DecodeError, "NaN and infinities are not Erlang floats");
                goto fail;
            }
            value = PyFloat_FromDouble(d);
            pos += 9;
            break;
        }
        case 107: /* STRING_EXT */
            NEED(3);
            n = rd16(buf + pos + 1);
            pos += 3;
            NEED(n);
            value = PyList_New(n);
            if (value != NULL) {
                for (Py_ssize_t k = 0; k < n; k++) {
                    PyObject *b = PyLong_FromLong(buf[pos + k]);
                    if (b == NULL) {
                        Py_CLEAR(value);
                        break;
                    }
                    PyList_SET_ITEM(value, k, b);
                }
            }
            pos += n;
            break;
        case 106: /* NIL_EXT */
            SPEND();
            value = PyList_New(0);
            pos += 1;
            break;
        case 104: /* SMALL_TUPLE_EXT */
        case 105: /* LARGE_TUPLE_EXT */
            if (tag == 104) {
                NEED(2);
                n = buf[pos + 1];
                pos += 2;
            } else {
                NEED(5);
                n = rd32(buf + pos + 1);
                pos += 5;
            }
            if (n == 0) {
                Py_INCREF(empty_tuple);
                value = empty_tuple;
                break;
            }
            NEED(n);
            SPEND();
            value = PyTuple_New(n);
            if (value == NULL) {
                goto fail;
            }
            PUSH(D_TUPLE, value, n, NULL);
            value = NULL;
            continue;
        case 108: /* LIST_EXT: n elements, then the tail */
            NEED(5);
            n = rd32(buf + pos + 1);
            pos += 5;
            if (n >= end - pos) {
                truncated();
                goto fail;
            }
            SPEND();
            value = PyList_New(n);
            if (value == NULL) {
                goto fail;
            }
            PUSH(D_LIST, value, n + 1, NULL);
            value = NULL;
            continue;
        case 116: /* MAP_EXT */
            NEED(5);
            n = rd32(buf + pos + 1);
            pos += 5;
            SPEND();
            if (n == 0) {
                value = PyDict_New();
                break;
            }
            if (2 * n > end - pos) {
                truncated();
                goto fail;
            }
            value = PyList_New(2 * n);
            if (value == NULL) {
                goto fail;
            }
            PUSH(D_MAP, value, 2 * n, NULL);
            value = NULL;
            continue;
        case 112: { /* NEW_FUN_EXT */
            NEED(30);
            Py_ssize_t start = pos + 1;
            uint32_t size = rd32(buf + pos + 1);
            unsigned char arity = buf[pos + 5];
            uint32_t index = rd32(buf + pos + 22);
            uint32_t num_free = rd32(buf + pos + 26);
            if (size > end - start) {
                truncated();
                goto fail;
            }
            pos += 30;
            PyObject *module = read_node(buf, end, &pos);
            if (module == NULL) {
                goto fail;
            }
            if (num_free > end - pos) {
                Py_DECREF(module);
                truncated();
                goto fail;
            }
            if (--budget < 0) {
                Py_DECREF(module);
                too_many(containers);
                goto fail;
            }
            PyObject *extra = Py_BuildValue("(nIBy#IN)", start, size, arity, (const char *)buf + start + 5,
                                            (Py_ssize_t)16, index, module);
            if (extra == NULL) {
                goto fail;
            }
            value = PyList_New(3 + (Py_ssize_t)num_free);
            if (value == NULL) {
                Py_DECREF(extra);
                goto fail;
            }
            PUSH(D_FUN, value, 3 + (Py_ssize_t)num_free, extra);
            value = NULL;
            continue;
        }
        case 88: { /* NEW_PID_EXT */
            pos += 1;
            PyObject *node = read_node(buf, end, &pos);
            if (node == NULL) {
                goto fail;
            }
            if (12 > end - pos) {
                Py_DECREF(node);
                truncated();
                goto fail;
            }
            value = PyObject_CallFunction(PidType, "Nkkk", node, (unsigned long)rd32(buf + pos),
                                          (unsigned long)rd32(buf + pos + 4), (unsigned long)rd32(buf + pos + 8));
            pos += 12;
            break;
        }
        case 90: { /* NEWER_REFERENCE_EXT */
            NEED(3);
            Py_ssize_t count = rd16(buf + pos + 1);
            pos += 3;
            PyObject *node = read_node(buf, end, &pos);
            if (node == NULL) {
                goto fail;
            }
            if (count < 1 || count > 5) {
                Py_DECREF(node);
                if (4 > end - pos) {
                    truncated();
                } else {
                    PyErr_Format(DecodeError, "reference with %zd id words (1 to 5 allowed)", count);
                }
                goto fail;
            }
            if (4 + 4 * count > end - pos) {
                Py_DECREF(node);
                truncated();
                goto fail;
            }
            PyObject *ids = PyTuple_New(count);
            if (ids == NULL) {
                Py_DECREF(node);
                goto fail;
            }
            for (Py_ssize_t k = 0; k < count; k++) {
                PyObject *w = PyLong_FromUnsignedLong(rd32(buf + pos + 4 + 4 * k));
                if (w == NULL) {
                    Py_DECREF(ids);
                    Py_DECREF(node);
                    goto fail;
                }
                PyTuple_SET_ITEM(ids, k, w);
            }
            value = PyObject_CallFunction(ReferenceType, "NkN", node, (unsigned long)rd32(buf + pos), ids);
            pos += 4 + 4 * count;
            break;
        }
        case 110: /* SMALL_BIG_EXT: 8 bytes or fewer here, longer in Python */
            NEED(3);
            n = buf[pos + 1];
            if (n <= 8 && buf[pos + 2] <= 1) {
                NEED(3 + n);
                uint64_t mag = 0;
                for (Py_ssize_t k = n - 1; k >= 0; k--) {
                    mag = (mag << 8) | buf[pos + 3 + k];
                }
                value = PyLong_FromUnsignedLongLong(mag);
                if (value != NULL && buf[pos + 2]) {
                    PyObject *neg = PyNumber_Negative(value);
                    Py_DECREF(value);
                    value = neg;
                }
                pos += 3 + n;
                break;
            }
            /* longer ones, or a bad sign byte: the Python handler */
            /* fall through */
        default: {
            PyObject *handler = PyList_GET_ITEM(handlers, tag);
            if (handler == Py_None) {
                PyObject *at = PyLong_FromLong(tag);
                if (at != NULL) {
                    PyObject *exc = PyObject_CallOneArg(bad_tag, at);
                    Py_DECREF(at);
                    if (exc != NULL) {
                        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
                        Py_DECREF(exc);
                    }
                }
                goto fail;
            }
            value = call_handler(buffer, &pos, handler);
            break;
        }
        }
        if (value == NULL) {
            goto fail;
        }
        /* Hand the value to the frame on top; close every frame this value completes. */
        for (;;) {
            if (sp == 0) {
                PyMem_Free(stack);
                if (held) {
                    /* Collector back on before the result tuple is allocated: the collection the
                     * decode's allocations are due is run by this (the decoding) thread. */
                    gc_release();
                }
                return Py_BuildValue("(Nn)", value, pos);
            }
            DFrame *f = &stack[sp];
            PyObject *tail = NULL;
            switch (f->kind) {
            case D_TUPLE:
                PyTuple_SET_ITEM(f->obj, f->i, value);
                break;
            case D_LIST:
                if (f->i == f->n - 1) {
                    tail = value;
                } else {
                    PyList_SET_ITEM(f->obj, f->i, value);
                }
                break;
            default:
                PyList_SET_ITEM(f->obj, f->i, value);
                break;
            }
            value = NULL;
            if (++f->i < f->n) {
                break;
            }
            if (f->kind == D_MAP) {
                /* No key can be deeper than the deepest level reached above this map's level. */
                f->extra = (peak - sp < MAX_KEY_DEPTH) ? Py_True : Py_False;
                Py_INCREF(f->extra);
            }
            value = finish_frame(f, tail, pos);
            Py_XDECREF(tail);
            if (f->kind == D_MAP) {
                Py_CLEAR(f->extra);
            }
            sp--;
            if (value == NULL) {
                goto fail;
            }
        }
    }

fail:
    Py_XDECREF(value);
    for (; sp > 0; sp--) {
        Py_XDECREF(stack[sp].obj);
        Py_XDECREF(stack[sp].extra);
    }
    PyMem_Free(stack);
    if (held) {
        gc_release();
    }
    return NULL;
#undef NEED
#undef SPEND
#undef PUSH
}

/* --- encoding ------------------------------------------------------------------------------- */

typedef struct {
    PyObject *bytes; /* the chunk being written (a bytes object, resized as it grows) */
    Py_ssize_t len;
    PyObject *parts; /* list to append chunks to, or NULL: one bytes result */
} Out;

static int
out_grow(Out *o, Py_ssize_t need)
{
    Py_ssize_t cap = PyBytes_GET_SIZE(o->bytes);
    if (o->len + need <= cap) {
        return 0;
    }
    Py_ssize_t want = cap * 2;
    if (want < o->len + need) {
        want = o->len + need + 256;
    }
    return _PyBytes_Resize(&o->bytes, want);
}

static inline int
out_write(Out *o, const void *data, Py_ssize_t n)
{
    if (out_grow(o, n) < 0) {
        return -1;
    }
    memcpy(PyBytes_AS_STRING(o->bytes) + o->len, data, n);
    o->len += n;
    return 0;
}

static inline int
out_byte(Out *o, unsigned char b)
{
    if (o->len >= PyBytes_GET_SIZE(o->bytes) && out_grow(o, 1) < 0) {
        return -1;
    }
    PyBytes_AS_STRING(o->bytes)[o->len++] = (char)b;
    return 0;
}

static inline int
out_tag32(Out *o, unsigned char tag, uint32_t v)
{
    unsigned char b[5] = {tag, (unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                          (unsigned char)v};
    return out_write(o, b, 5);
}

/* Append bytes data: copied into the chunk, or (long ones, with a parts list) appended as is. */
static int
out_object(Out *o, PyObject *data)
{
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    if (o->parts == NULL || n < BIG_CHUNK) {
        return out_write(o, PyBytes_AS_STRING(data), n);
    }
    if (o->len) {
        if (_PyBytes_Resize(&o->bytes, o->len) < 0 || PyList_Append(o->parts, o->bytes) < 0) {
            return -1;
        }
        Py_DECREF(o->bytes);
        o->len = 0;
        o->bytes = PyBytes_FromStringAndSize(NULL, 256);
        if (o->bytes == NULL) {
            return -1;
        }
    }
    return PyList_Append(o->parts, data);
}

/* Append what a Python helper returns (bytes). */
static int
out_call(Out *o, PyObject *fn, PyObject *x)
{
    PyObject *data = PyObject_CallOneArg(fn, x);
    if (data == NULL) {
        return -1;
    }
    if (!PyBytes_Check(data)) {
        Py_DECREF(data);
        PyErr_SetString(PyExc_SystemError, "an encoding helper did not return bytes");
        return -1;
    }
    int r = out_object(o, data);
    Py_DECREF(data);
    return r;
}

static int
out_atom(Out *o, PyObject *atom)
{
    PyObject *data = PyDict_GetItemWithError(atom_cache, atom);
    if (data != NULL && PyBytes_CheckExact(data)) {
        return out_write(o, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data));
    }
    if (PyErr_Occurred()) {
        return -1;
    }
    return out_call(o, atom_bytes, atom);
}

static int
out_int(Out *o, PyObject *x)
{
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(x, &overflow);
    if (overflow) {
        return out_call(o, big_bytes, x);
    }
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (v >= 0 && v <= 255) {
        unsigned char b[2] = {97, (unsigned char)v};
        return out_write(o, b, 2);
    }
    if (v >= INT32_MIN && v <= INT32_MAX) {
        return out_tag32(o, 98, (uint32_t)(int32_t)v);
    }
    unsigned char b[11];
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    int n = 0;
    while (mag) {
        b[3 + n++] = (unsigned char)mag;
        mag >>= 8;
    }
    b[0] = 110;
    b[1] = (unsigned char)n;
    b[2] = v < 0;
    return out_write(o, b, 3 + n);
}

/* A field of a Pid or Reference as a 32-bit word; -1 when it is not an exact int in range. */
static int
get_u32(PyObject *obj, PyObject *name, uint32_t *out)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL) {
        PyErr_Clear();
        return -1;
    }
    int r = -1;
    if (PyLong_CheckExact(v)) {
        unsigned long long u = PyLong_AsUnsignedLongLong(v);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
        } else if (u <= 0xFFFFFFFFull) {
            *out = (uint32_t)u;
            r = 0;
        }
    }
    Py_DECREF(v);
    return r;
}

/* The node atom's encoding, or 1 when the field is not an exact Atom (the Python helper decides). */
static int
out_node_of(Out *o, PyObject *obj)
{
    PyObject *node = PyObject_GetAttr(obj, str_node);
    if (node == NULL) {
        PyErr_Clear();
        return 1;
    }
    int r = 1;
    if ((PyObject *)Py_TYPE(node) == AtomType) {
        r = out_atom(o, node);
    }
    Py_DECREF(node);
    return r;
}

static int
out_pid(Out *o, PyObject *x)
{
    uint32_t id, serial, creation;
    if (get_u32(x, str_id, &id) == 0 && get_u32(x, str_serial, &serial) == 0 &&
        get_u32(x, str_creation, &creation) == 0) {
        Py_ssize_t mark = o->len;
        if (out_byte(o, 88) < 0) {
            return -1;
        }
        int r = out_node_of(o, x);
        if (r < 0) {
            return -1;
        }
        if (r == 0) {
            unsigned char b[12];
            uint32_t w[3] = {id, serial, creation};
            for (int k = 0; k < 3; k++) {
                b[4 * k] = (unsigned char)(w[k] >> 24);
                b[4 * k + 1] = (unsigned char)(w[k] >> 16);
                b[4 * k + 2] = (unsigned char)(w[k] >> 8);
                b[4 * k + 3] = (unsigned char)w[k];
            }
            return out_write(o, b, 12);
        }
        o->len = mark;
    }
    return out_call(o, encode_other, x);
}

static int
out_reference(Out *o, PyObject *x)
{
    uint32_t creation, words[5];
    PyObject *ids = PyObject_GetAttr(x, str_ids);
    if (ids == NULL) {
        PyErr_Clear();
        return out_call(o, encode_other, x);
    }
    Py_ssize_t count = PyTuple_CheckExact(ids) ? PyTuple_GET_SIZE(ids) : 0;
    int ok = count >= 1 && count <= 5 && get_u32(x, str_creation, &creation) == 0;
    for (Py_ssize_t k = 0; ok && k < count; k++) {
        PyObject *w = PyTuple_GET_ITEM(ids, k);
        if (!PyLong_CheckExact(w)) {
            ok = 0;
            break;
        }
        unsigned long long u = PyLong_AsUnsignedLongLong(w);
        if ((u == (unsigned long long)-1 && PyErr_Occurred()) || u > 0xFFFFFFFFull) {
            PyErr_Clear();
            ok = 0;
            break;
        }
        words[k] = (uint32_t)u;
    }
    Py_DECREF(ids);
    if (ok) {
        Py_ssize_t mark = o->len;
        unsigned char head[3] = {90, 0, (unsigned char)count};
        if (out_write(o, head, 3) < 0) {
            return -1;
        }
        int r = out_node_of(o, x);
        if (r < 0) {
            return -1;
        }
        if (r == 0) {
            unsigned char b[4];
            for (Py_ssize_t k = -1; k < count; k++) {
                uint32_t v = k < 0 ? creation : words[k];
                b[0] = (unsigned char)(v >> 24);
                b[1] = (unsigned char)(v >> 16);
                b[2] = (unsigned char)(v >> 8);
                b[3] = (unsigned char)v;
                if (out_write(o, b, 4) < 0) {
                    return -1;
                }
            }
            return 0;
        }
        o->len = mark;
    }
    return out_call(o, encode_other, x);
}

enum { E_TUPLE = 1, E_LIST, E_DICT };

typedef struct {
    int kind;
    PyObject *obj;     /* owned */
    Py_ssize_t i, n;   /* next index (tuple, list) or PyDict_Next position; element count */
    Py_ssize_t done;   /* dict: pairs taken so far */
    PyObject *pending; /* dict: the value of the key just encoded (owned) */
} EFrame;

typedef struct {
    EFrame *stack;
    Py_ssize_t sp, cap, check_at;
} EStack;

static int
epush(EStack *s, int kind, PyObject *obj, Py_ssize_t n)
{
    if (s->sp == s->cap) {
        EFrame *bigger = PyMem_Realloc(s->stack, 2 * s->cap * sizeof(EFrame));
        if (bigger == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        s->stack = bigger;
        s->cap *= 2;
    }
    EFrame *f = &s->stack[s->sp++];
    f->kind = kind;
    Py_INCREF(obj);
    f->obj = obj;
    f->i = 0;
    f->n = n;
    f->done = 0;
    f->pending = NULL;
    if (s->sp > s->check_at) {
        /* A container that contains itself would loop forever: look for one. */
        PyObject *seen = PySet_New(NULL);
        if (seen == NULL) {
            return -1;
        }
        for (Py_ssize_t k = 0; k < s->sp; k++) {
            PyObject *id = PyLong_FromVoidPtr(s->stack[k].obj);
            int r = id == NULL ? -1 : PySet_Contains(seen, id);
            if (r == 0) {
                r = PySet_Add(seen, id);
            } else if (r == 1) {
                PyErr_SetString(EncodeError, "the value contains itself (a cycle has no Erlang form)");
                r = -1;
            }
            Py_XDECREF(id);
            if (r < 0) {
                Py_DECREF(seen);
                return -1;
            }
        }
        Py_DECREF(seen);
        s->check_at *= 2;
    }
    return 0;
}

/* Encode one value: a scalar, or a container's header (its frame pushed for the elements). */
static int
encode_value(Out *o, EStack *s, PyObject *x)
{
    PyTypeObject *t = Py_TYPE(x);
    if (t == &PyLong_Type) {
        return out_int(o, x);
    }
    if (t == &PyBytes_Type) {
        Py_ssize_t n = PyBytes_GET_SIZE(x);
        if (n > 0xFFFFFFFFLL) {
            return out_call(o, encode_other, x);
        }
        if (out_tag32(o, 109, (uint32_t)n) < 0) {
            return -1;
        }
        return out_object(o, x);
    }
    if ((PyObject *)t == AtomType) {
        return out_atom(o, x);
    }
    if (t == &PyTuple_Type) {
        Py_ssize_t n = PyTuple_GET_SIZE(x);
        if (n < 256) {
            unsigned char b[2] = {104, (unsigned char)n};
            if (out_write(o, b, 2) < 0) {
                return -1;
            }
        } else if (out_tag32(o, 105, (uint32_t)n) < 0) {
            return -1;
        }
        return n ? epush(s, E_TUPLE, x, n) : 0;
    }
    if (t == &PyList_Type) {
        Py_ssize_t n = PyList_GET_SIZE(x);
        if (n == 0) {
            return out_byte(o, 106);
        }
        PyObject *first = PyList_GET_ITEM(x, 0);
        if (Py_TYPE(first) == &PyLong_Type && n <= 65535) {
            /* STRING_EXT when every element is an int in 0..255 (exact ints decided here). */
            int plain = 1, fits = 1;
            for (Py_ssize_t k = 0; k < n; k++) {
                PyObject *e = PyList_GET_ITEM(x, k);
                if (Py_TYPE(e) != &PyLong_Type) {
                    plain = 0;
                    break;
                }
                int overflow;
                long v = PyLong_AsLongAndOverflow(e, &overflow);
                if (overflow || v < 0 || v > 255) {
                    fits = 0;
                    break;
                }
            }
            if (plain && fits) {
                unsigned char head[3] = {107, (unsigned char)(n >> 8), (unsigned char)n};
                if (out_write(o, head, 3) < 0 || out_grow(o, n) < 0) {
                    return -1;
                }
                unsigned char *p = (unsigned char *)PyBytes_AS_STRING(o->bytes) + o->len;
                for (Py_ssize_t k = 0; k < n; k++) {
                    p[k] = (unsigned char)PyLong_AsLong(PyList_GET_ITEM(x, k));
                }
                o->len += n;
                return 0;
            }
            if (!plain) {
                PyObject *data = PyObject_CallOneArg(is_byte_string, x);
                if (data == NULL) {
                    return -1;
                }
                if (data != Py_None) {
                    Py_ssize_t m = PyBytes_GET_SIZE(data);
                    unsigned char head[3] = {107, (unsigned char)(m >> 8), (unsigned char)m};
                    int r = out_write(o, head, 3) < 0 ? -1 : out_object(o, data);
                    Py_DECREF(data);
                    return r;
                }
                Py_DECREF(data);
            }
        }
        if (out_tag32(o, 108, (uint32_t)n) < 0) {
            return -1;
        }
        return epush(s, E_LIST, x, n);
    }
    if (t == &PyFloat_Type) {
        double d = PyFloat_AS_DOUBLE(x);
        if (!isfinite(d)) {
            return out_call(o, float_error, x);
        }
        uint64_t bits;
        memcpy(&bits, &d, 8);
        unsigned char b[9] = {70};
        for (int k = 0; k < 8; k++) {
            b[1 + k] = (unsigned char)(bits >> (56 - 8 * k));
        }
        return out_write(o, b, 9);
    }
    if (t == &PyUnicode_Type) {
        if (PyUnicode_IS_ASCII(x)) {
            Py_ssize_t n = PyUnicode_GET_LENGTH(x);
            if (out_tag32(o, 109, (uint32_t)n) < 0) {
                return -1;
            }
            return out_write(o, PyUnicode_DATA(x), n);
        }
        PyObject *data = PyUnicode_AsUTF8String(x);
        if (data == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
                return -1;
            }
            PyErr_Clear();
            return out_call(o, utf8_error, x); /* raises the reference codec's EncodeError */
        }
        int r = out_tag32(o, 109, (uint32_t)PyBytes_GET_SIZE(data)) < 0 ? -1 : out_object(o, data);
        Py_DECREF(data);
        return r;
    }
    if (t == &PyDict_Type) {
        Py_ssize_t n = PyDict_GET_SIZE(x);
        if (out_tag32(o, 116, (uint32_t)n) < 0) {
            return -1;
        }
        return n ? epush(s, E_DICT, x, n) : 0;
    }
    if (x == Py_True) {
        return out_write(o, "w\x04true", 6);
    }
    if (x == Py_False) {
        return out_write(o, "w\x05" "false", 7);
    }
    if (x == Py_None) {
        return out_write(o, "w\x09undefined", 11);
    }
    if ((PyObject *)t == PidType) {
        return out_pid(o, x);
    }
    if ((PyObject *)t == ReferenceType) {
        return out_reference(o, x);
    }
    return out_call(o, encode_other, x); /* the Python codec encodes the whole value */
}

/* encode(term, parts: list | None, version: bool) -> bytes | None. With parts, chunks are appended
 * to it (long binaries by reference) and None is returned; without, the whole encoding is returned. */
static PyObject *
sp_encode(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!ready) {
        PyErr_SetString(PyExc_RuntimeError, "_speedups.setup() was not called");
        return NULL;
    }
    if (nargs != 3 || (args[1] != Py_None && !PyList_CheckExact(args[1]))) {
        PyErr_SetString(PyExc_TypeError, "encode(term, parts: list | None, version: bool)");
        return NULL;
    }
    Out o = {PyBytes_FromStringAndSize(NULL, 128), 0, args[1] == Py_None ? NULL : args[1]};
    if (o.bytes == NULL) {
        return NULL;
    }
    EStack s = {PyMem_Malloc(16 * sizeof(EFrame)), 0, 16, CYCLE_CHECK_DEPTH};
    if (s.stack == NULL) {
        Py_DECREF(o.bytes);
        return PyErr_NoMemory();
    }
    unsigned int tick = 0;
    if (PyObject_IsTrue(args[2]) && out_byte(&o, 131) < 0) {
        goto fail;
    }
    if (encode_value(&o, &s, args[0]) < 0) {
        goto fail;
    }
    while (s.sp) {
        if (++tick == RELEASE_EVERY) {
            tick = 0;
            Py_BEGIN_ALLOW_THREADS
            Py_END_ALLOW_THREADS
        }
        EFrame *f = &s.stack[s.sp - 1];
        PyObject *x = NULL;
        if (f->kind == E_TUPLE) {
            if (f->i < f->n) {
                x = PyTuple_GET_ITEM(f->obj, f->i);
                Py_INCREF(x);
                f->i++;
            }
        } else if (f->kind == E_LIST) {
            if (f->i < f->n) {
                if (f->i >= PyList_GET_SIZE(f->obj)) {
                    PyErr_SetString(PyExc_RuntimeError, "list changed size during encoding");
                    goto fail;
                }
                x = PyList_GET_ITEM(f->obj, f->i);
                Py_INCREF(x);
                f->i++;
            } else if (PyList_GET_SIZE(f->obj) != f->n) {
                PyErr_SetString(PyExc_RuntimeError, "list changed size during encoding");
                goto fail;
            }
        } else if (f->pending != NULL) {
            x = f->pending;
            f->pending = NULL;
        } else if (f->done < f->n) {
            PyObject *key, *val;
            if (PyDict_GET_SIZE(f->obj) != f->n || !PyDict_Next(f->obj, &f->i, &key, &val)) {
                PyErr_SetString(PyExc_RuntimeError, "dictionary changed size during encoding");
                goto fail;
            }
            f->done++;
            Py_INCREF(key);
            Py_INCREF(val);
            x = key;
            f->pending = val;
        }
        if (x == NULL) {
            int is_list = f->kind == E_LIST;
            Py_DECREF(f->obj);
            s.sp--;
            if (is_list && out_byte(&o, 106) < 0) {
                goto fail;
            }
            continue;
        }
        int r = encode_value(&o, &s, x);
        Py_DECREF(x);
        if (r < 0) {
            goto fail;
        }
    }
    PyMem_Free(s.stack);
    if (_PyBytes_Resize(&o.bytes, o.len) < 0) {
        return NULL;
    }
    if (o.parts == NULL) {
        return o.bytes;
    }
    int r = o.len ? PyList_Append(o.parts, o.bytes) : 0;
    Py_DECREF(o.bytes);
    if (r < 0) {
        return NULL;
    }
    Py_RETURN_NONE;

fail:
    for (Py_ssize_t k = 0; k < s.sp; k++) {
        Py_DECREF(s.stack[k].obj);
        Py_XDECREF(s.stack[k].pending);
    }
    PyMem_Free(s.stack);
    Py_XDECREF(o.bytes);
    return NULL;
}

/* --- setup ----------------------------------------------------------------------------------- */

static PyObject **const setup_slots[] = {
    &DecodeError, &EncodeError, &AtomType, &PidType, &ReferenceType, &handlers, &utf8_atoms,
    &latin1_atoms, &new_atom, &finish_list, &finish_map, &finish_fun, &bad_tag, &atom_cache,
    &atom_bytes, &big_bytes, &is_byte_string, &utf8_error, &float_error, &encode_other,
};
#define NSLOTS ((Py_ssize_t)(sizeof(setup_slots) / sizeof(setup_slots[0])))

/* setup(*helpers): the Python codec's types, caches and helpers, in the order of setup_slots. */
static PyObject *
sp_setup(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != NSLOTS) {
        PyErr_Format(PyExc_TypeError, "setup() takes %zd arguments", NSLOTS);
        return NULL;
    }
    if (!PyList_CheckExact(args[5]) || PyList_GET_SIZE(args[5]) != 256 || !PyDict_CheckExact(args[6]) ||
        !PyDict_CheckExact(args[7]) || !PyDict_CheckExact(args[13])) {
        PyErr_SetString(PyExc_TypeError, "setup(): bad handler table or caches");
        return NULL;
    }
    for (Py_ssize_t k = 0; k < NSLOTS; k++) {
        Py_INCREF(args[k]);
        Py_XSETREF(*setup_slots[k], args[k]);
    }
    for (int k = 0; k < ATOM_SLOTS; k++) {
        Py_CLEAR(utf8_slots[k].raw);
        Py_CLEAR(utf8_slots[k].value);
        Py_CLEAR(latin1_slots[k].raw);
        Py_CLEAR(latin1_slots[k].value);
    }
    ready = 1;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"decode", (PyCFunction)(void (*)(void))sp_decode, METH_FASTCALL,
     "decode(buf, pos, containers) -> (term, end): one term body (no version byte)."},
    {"encode", (PyCFunction)(void (*)(void))sp_encode, METH_FASTCALL,
     "encode(term, parts, version) -> bytes | None."},
    {"setup", (PyCFunction)(void (*)(void))sp_setup, METH_FASTCALL, "setup(*helpers): wire the Python codec in."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "philipjose.term._speedups",
    "The optional compiled accelerator of philipjose.term (see philipjose/term/_accel.py).", -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    str_utf8 = PyUnicode_InternFromString("utf-8");
    str_latin1 = PyUnicode_InternFromString("latin-1");
    str_node = PyUnicode_InternFromString("node");
    str_id = PyUnicode_InternFromString("id");
    str_serial = PyUnicode_InternFromString("serial");
    str_creation = PyUnicode_InternFromString("creation");
    str_ids = PyUnicode_InternFromString("ids");
    empty_tuple = PyTuple_New(0);
    if (!str_utf8 || !str_latin1 || !str_node || !str_id || !str_serial || !str_creation || !str_ids ||
        !empty_tuple) {
        return NULL;
    }
    return PyModule_Create(&module);
}

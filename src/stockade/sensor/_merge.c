/* Enrichment's merge in C: the enriched event as one new dict, sized once.
 *
 * merge(base, fields, raw, private) is {**base, **fields, **raw} without the keys in `private` (a
 * set): the same items in the same order as the pure-Python merge in stockade.sensor.enrich, which
 * runs where this is not built (scripts/build-native.sh builds it; tests/sensor/test_enrich_merge.py
 * checks both give the same dicts).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* whether `key` is one of the private keys: they all start with "_" */
static inline int is_private(PyObject *key, PyObject *private) {
    if (PyUnicode_CheckExact(key) && (PyUnicode_GET_LENGTH(key) == 0 || PyUnicode_READ_CHAR(key, 0) != '_'))
        return 0;
    return PySet_Contains(private, key);
}

static int add_all(PyObject *ev, PyObject *src, PyObject *private) {
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (PyDict_Next(src, &pos, &k, &v)) {
        int p = is_private(k, private);
        if (p < 0)
            return -1;
        if (!p && PyDict_SetItem(ev, k, v))
            return -1;
    }
    return 0;
}

static PyObject *merge(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyDict_Check(args[0]) || !PyDict_Check(args[1]) || !PyDict_Check(args[2]) ||
        !PyAnySet_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "merge(base: dict, fields: dict, raw: dict, private: set)");
        return NULL;
    }
    Py_ssize_t n = PyDict_GET_SIZE(args[0]) + PyDict_GET_SIZE(args[1]) + PyDict_GET_SIZE(args[2]);
#if PY_VERSION_HEX < 0x030D0000
    PyObject *ev = _PyDict_NewPresized(n);
#else
    PyObject *ev = PyDict_New();
    (void)n;
#endif
    if (ev == NULL)
        return NULL;
    for (int i = 0; i < 3; i++) {
        if (add_all(ev, args[i], args[3])) {
            Py_DECREF(ev);
            return NULL;
        }
    }
    return ev;
}

static PyMethodDef methods[] = {
    {"merge", (PyCFunction)(void (*)(void))merge, METH_FASTCALL,
     "merge(base, fields, raw, private) -> {**base, **fields, **raw} without the keys in private"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_merge", "Enrichment's merge in C.", -1, methods,
};

PyMODINIT_FUNC PyInit__merge(void) { return PyModule_Create(&moddef); }

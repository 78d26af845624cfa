package safetext

import (
	"encoding/json"
	"reflect"
)

// maxValueDepth bounds the nesting CleanValue follows: an output is a JSON
// value a few levels deep, and a map that holds itself must not recurse
// without end.
const maxValueDepth = 64

var jsonNumber = reflect.TypeOf(json.Number(""))

// CleanValue returns a copy of an output value with every string in it
// cleaned as Clean cleans a message (map keys too), at any depth of maps,
// slices and arrays; numbers (json.Number included), booleans and nil are
// kept. Strings of a named type keep their type. Structs and pointers are
// returned as they are: outputs are JSON values. A map, slice or array
// deeper than maxValueDepth is replaced by Redacted (or by nil where a
// string cannot stand).
func CleanValue(v any) any {
	if v == nil {
		return nil
	}
	return cleanValue(reflect.ValueOf(v), 0).Interface()
}

func cleanValue(v reflect.Value, depth int) reflect.Value {
	isContainer := v.Kind() == reflect.Slice || v.Kind() == reflect.Array || v.Kind() == reflect.Map
	if isContainer && depth > maxValueDepth {
		return reflect.ValueOf(Redacted)
	}
	switch v.Kind() {
	case reflect.String:
		if v.Type() == jsonNumber {
			return v
		}
		return reflect.ValueOf(Clean(v.String())).Convert(v.Type())
	case reflect.Interface:
		return cleanInterface(v, depth)
	case reflect.Slice, reflect.Array:
		return cleanSequence(v, depth)
	case reflect.Map:
		return cleanMap(v, depth)
	}
	return v
}

// cleanInterface cleans the value an interface holds (an element of a
// []any or map[string]any) into the same interface type.
func cleanInterface(v reflect.Value, depth int) reflect.Value {
	if v.IsNil() {
		return v
	}
	out := reflect.New(v.Type()).Elem()
	setClean(out, v.Elem(), depth)
	return out
}

func cleanSequence(v reflect.Value, depth int) reflect.Value {
	if v.Kind() == reflect.Slice && v.IsNil() {
		return v
	}
	out := reflect.New(v.Type()).Elem()
	if v.Kind() == reflect.Slice {
		out = reflect.MakeSlice(v.Type(), v.Len(), v.Len())
	}
	for i := 0; i < v.Len(); i++ {
		setClean(out.Index(i), v.Index(i), depth+1)
	}
	return out
}

func cleanMap(v reflect.Value, depth int) reflect.Value {
	if v.IsNil() {
		return v
	}
	out := reflect.MakeMapWithSize(v.Type(), v.Len())
	for it := v.MapRange(); it.Next(); {
		key := reflect.New(v.Type().Key()).Elem()
		val := reflect.New(v.Type().Elem()).Elem()
		setClean(key, it.Key(), depth+1)
		setClean(val, it.Value(), depth+1)
		out.SetMapIndex(key, val)
	}
	return out
}

// setClean stores the cleaned src in dst. Only a value cut for its depth
// (Redacted, a string) can fail to fit dst's type; dst is then Redacted if
// it holds a string, else its zero value.
func setClean(dst, src reflect.Value, depth int) {
	c := cleanValue(src, depth)
	switch {
	case c.Type().AssignableTo(dst.Type()):
		dst.Set(c)
	case dst.Kind() == reflect.String:
		dst.SetString(Redacted)
	}
}

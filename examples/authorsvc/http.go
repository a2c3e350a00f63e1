package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/pkgroute/pkgroute/middleware"
	"github.com/pkgroute/pkgroute/repository"
	"github.com/pkgroute/pkgroute/router"
)

// The HTTP routes of the author service call the same commands as the
// packages: one piece of business logic, two transports.

func getAuthorsHTTP(cmds authorCommands, pkgs *router.PackageRouter[PkgID]) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var in GetAuthorsInput
		var err error
		if in.ID, err = queryInt(q.Get("id"), "/id"); err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		in.Name = queryString(q, "name")
		in.SearchTerm = queryString(q, "search")
		if err := validateAs(pkgs, GetAuthors, in); err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		out, err := cmds.get.Execute(r.Context(), in)
		if err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		_ = middleware.WriteJSON(w, http.StatusOK, out)
	}
}

func getPaginatedAuthorsHTTP(cmds authorCommands, pkgs *router.PackageRouter[PkgID]) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var in GetPaginatedAuthorsInput
		var f AuthorFilters
		var err error
		if f.ID, err = queryInt(q.Get("id"), "/filters/id"); err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		f.Name = queryString(q, "name")
		if f.ID != nil || f.Name != nil {
			in.Filters = &f
		}
		page, err := queryInt(q.Get("page"), "/page")
		if err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		perPage, err := queryInt(q.Get("per_page"), "/per_page")
		if err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		in.Page = repository.Page{Page: intPtr(page), PerPage: intPtr(perPage), Cursor: queryString(q, "cursor")}
		if err := validateAs(pkgs, GetPaginatedAuthors, in); err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		out, err := cmds.paginated.Execute(r.Context(), in)
		if err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		_ = middleware.WriteJSON(w, http.StatusOK, out.Result)
	}
}

func createAuthorHTTP(cmds authorCommands, pkgs *router.PackageRouter[PkgID]) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(r)
		if err == nil {
			err = pkgs.Route(CreateAuthor).Validate(body)
		}
		var in CreateAuthorInput
		if err == nil {
			err = decodeStrict(body, &in)
		}
		if err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		out, err := cmds.create.Execute(r.Context(), in)
		if err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		_ = middleware.WriteJSON(w, http.StatusCreated, out)
	}
}

func updateAuthorHTTP(cmds authorCommands, pkgs *router.PackageRouter[PkgID]) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		// The package's data is the body with the id of the path.
		body, err := readBody(r)
		var fields map[string]json.RawMessage
		if err == nil {
			err = decodeStrict(body, &fields)
		}
		switch {
		case err != nil:
		case fields == nil: // the body is null
			err = pkgs.Route(UpdateAuthor).Validate(body)
		case fields["id"] != nil:
			err = invalidField("/id", "the id is given in the path, not in the body")
		}
		var in UpdateAuthorInput
		if err == nil {
			fields["id"] = json.RawMessage(strconv.FormatInt(id, 10))
			data, _ := json.Marshal(fields)
			if err = pkgs.Route(UpdateAuthor).Validate(data); err == nil {
				err = decodeStrict(data, &in)
			}
		}
		if err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		out, err := cmds.update.Execute(r.Context(), in)
		if err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		_ = middleware.WriteJSON(w, http.StatusOK, out)
	}
}

func deleteAuthorHTTP(cmds authorCommands, pkgs *router.PackageRouter[PkgID]) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err == nil {
			err = validateAs(pkgs, DeleteAuthor, DeleteAuthorInput{ID: id})
		}
		if err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		if _, err := cmds.delete.Execute(r.Context(), DeleteAuthorInput{ID: id}); err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// validateAs checks in, encoded as JSON, against the schema of package id.
func validateAs(pkgs *router.PackageRouter[PkgID], id PkgID, in any) error {
	data, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return pkgs.Route(id).Validate(data)
}

// readBody reads a JSON body: a body over the size limit is
// request_too_large, one that is not JSON invalid_data.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("read body: %w", middleware.ErrRequestTooLarge)
		}
		return nil, invalidField("", "the body could not be read")
	}
	if !json.Valid(b) {
		return nil, invalidField("", "the body is not valid JSON")
	}
	return b, nil
}

// decodeStrict decodes a JSON object into v strictly: unknown fields,
// duplicate keys and trailing data are invalid_data.
func decodeStrict(b []byte, v any) error {
	if err := checkNoDuplicateKeys(b); err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return invalidField("/"+te.Field, "got "+te.Value+", want "+te.Type.String())
		}
		return invalidField("", "the body does not match the expected object")
	}
	if d.More() {
		return invalidField("", "trailing data after the body")
	}
	return nil
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return 0, invalidField("/id", "must be an integer")
	}
	return id, nil // its range is the package schema's to check
}

func queryInt(s, path string) (*int64, error) {
	if s == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil, invalidField(path, "must be an integer")
	}
	return &n, nil
}

func queryString(q map[string][]string, key string) *string {
	v, ok := q[key]
	if !ok || len(v) == 0 {
		return nil
	}
	return &v[0]
}

func intPtr(n *int64) *int {
	if n == nil {
		return nil
	}
	v := int(*n)
	return &v
}

// decodeBody reads a JSON object body and decodes it into v strictly.
func decodeBody(r *http.Request, v any) error {
	b, err := readBody(r)
	if err != nil {
		return err
	}
	return decodeStrict(b, v)
}

// checkNoDuplicateKeys refuses a JSON document in which an object names a
// member twice (encoding/json would keep the last one silently; the
// WebSocket transport refuses such data too).
func checkNoDuplicateKeys(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	type frame struct {
		keys     map[string]bool
		inObject bool
		wantKey  bool
	}
	var stack []frame
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return invalidField("", "the body is not valid JSON")
		}
		top := len(stack) - 1
		if top >= 0 && stack[top].inObject && stack[top].wantKey {
			if key, ok := tok.(string); ok {
				if stack[top].keys[key] {
					return router.NewError(router.StatusInvalidData, router.CodeInvalidRequest,
						"the member "+strconv.Quote(key)+" appears twice")
				}
				stack[top].keys[key] = true
				stack[top].wantKey = false
				continue
			}
		}
		if top >= 0 && stack[top].inObject {
			stack[top].wantKey = true // this token is a value
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{keys: map[string]bool{}, inObject: true, wantKey: true})
		case json.Delim('['):
			stack = append(stack, frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:top]
		}
	}
}

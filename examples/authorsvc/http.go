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
)

// The HTTP routes of the author service call the same commands as the
// packages: one piece of business logic, two transports.

func getAuthorsHTTP(cmds authorCommands) http.HandlerFunc {
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
		out, err := cmds.get.Execute(r.Context(), in)
		if err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		_ = middleware.WriteJSON(w, http.StatusOK, out)
	}
}

func getPaginatedAuthorsHTTP(cmds authorCommands) http.HandlerFunc {
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
		out, err := cmds.paginated.Execute(r.Context(), in)
		if err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		_ = middleware.WriteJSON(w, http.StatusOK, out.Result)
	}
}

func createAuthorHTTP(cmds authorCommands) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in CreateAuthorInput
		if err := decodeBody(r, &in); err != nil {
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

func updateAuthorHTTP(cmds authorCommands) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		var body struct {
			Name string `json:"name"`
		}
		if err := decodeBody(r, &body); err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		out, err := cmds.update.Execute(r.Context(), UpdateAuthorInput{ID: id, Name: body.Name})
		if err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		_ = middleware.WriteJSON(w, http.StatusOK, out)
	}
}

func deleteAuthorHTTP(cmds authorCommands) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
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

// decodeBody decodes a JSON object body into v strictly: unknown fields,
// trailing data and bodies that are not JSON are invalid_data.
func decodeBody(r *http.Request, v any) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("read body: %w", middleware.ErrRequestTooLarge)
		}
		return invalidField("", "the body could not be read")
	}
	if !json.Valid(b) {
		return invalidField("", "the body is not valid JSON")
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return invalidField("/"+te.Field, "got "+te.Value+", want "+te.Type.String())
		}
		return invalidField("", "the body does not match the expected object: "+err.Error())
	}
	if d.More() {
		return invalidField("", "trailing data after the body")
	}
	return nil
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, invalidField("/id", "must be a positive integer")
	}
	return id, nil
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

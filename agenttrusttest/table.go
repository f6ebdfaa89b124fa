package agenttrusttest

import "net/http"

// table holds the entities of one kind by id and remembers the order in
// which they were added, so that list endpoints answer in creation order.
// Like the rest of state it is guarded by Server.mu. The zero value is an
// empty table ready to use.
type table[T any] struct {
	byID  map[string]*T
	order []string
}

// put stores v under id. A new id goes to the end of the order; an id
// already present keeps its place.
func (t *table[T]) put(id string, v *T) {
	if t.byID == nil {
		t.byID = map[string]*T{}
	}
	if !t.has(id) {
		t.order = append(t.order, id)
	}
	t.byID[id] = v
}

// get returns the entity stored under id, or nil and false.
func (t *table[T]) get(id string) (*T, bool) {
	v, ok := t.byID[id]
	return v, ok
}

// has reports whether an entity is stored under id.
func (t *table[T]) has(id string) bool {
	_, ok := t.byID[id]
	return ok
}

// del removes the entity stored under id and reports whether there was one.
func (t *table[T]) del(id string) bool {
	if !t.has(id) {
		return false
	}
	delete(t.byID, id)
	t.order = removeString(t.order, id)
	return true
}

// list returns copies of the entities for which keep is true, in the order
// they were added. It never returns nil, so an empty list encodes as [].
func (t *table[T]) list(keep func(*T) bool) []T {
	out := []T{}
	for _, id := range t.order {
		if v := t.byID[id]; keep(v) {
			out = append(out, *v)
		}
	}
	return out
}

// listOf takes the lock and returns copies of the entities in tab for which
// keep is true, in the order they were added.
func listOf[T any](s *Server, tab *table[T], keep func(*T) bool) []T {
	s.mu.Lock()
	defer s.mu.Unlock()
	return tab.list(keep)
}

// insert takes the lock, gives v the next id with prefix (written to *id,
// v's id field) and stores it in tab. It returns a copy taken under the
// lock.
func insert[T any](s *Server, tab *table[T], prefix string, v *T, id *string) T {
	s.mu.Lock()
	defer s.mu.Unlock()
	*id = s.st.nextID(prefix)
	tab.put(*id, v)
	return *v
}

// updateOr404 runs op under the lock on the entity in tab named by the path
// parameter param and returns true. When there is none it answers 404 with
// notFound and returns false.
func updateOr404[T any](s *Server, c *call, tab *table[T], param, notFound string, op func(*T)) bool {
	s.mu.Lock()
	v, ok := tab.get(c.param(param))
	if ok {
		op(v)
	}
	s.mu.Unlock()
	if !ok {
		c.fail(http.StatusNotFound, notFound)
	}
	return ok
}

// getOr404 returns a copy, taken under the lock, of the entity in tab named
// by the path parameter param. When there is none it answers 404 with
// notFound and returns false.
func getOr404[T any](s *Server, c *call, tab *table[T], param, notFound string) (T, bool) {
	var out T
	ok := updateOr404(s, c, tab, param, notFound, func(v *T) { out = *v })
	return out, ok
}

// deleter returns the handler of a DELETE route: it removes the entity
// named by the path parameter param from tab and answers 204, or 404 with
// notFound when there is none.
func deleter[T any](s *Server, tab *table[T], param, notFound string) func(*call) {
	return func(c *call) {
		id := c.param(param)
		s.mu.Lock()
		ok := tab.del(id)
		s.mu.Unlock()
		if !ok {
			c.fail(http.StatusNotFound, notFound)
			return
		}
		c.noContent()
	}
}

func removeString(list []string, v string) []string {
	out := list[:0:0]
	for _, x := range list {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

package rbac

// HasAll reports whether held contains every role in required. An empty
// required list is always satisfied. It does not allocate.
func HasAll(held, required []string) bool {
	for _, r := range required {
		if !contains(held, r) {
			return false
		}
	}
	return true
}

// Missing returns the roles of required that held lacks, in required's order.
func Missing(held, required []string) []string {
	var out []string
	for _, r := range required {
		if !contains(held, r) {
			out = append(out, r)
		}
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

package ensure

// orDrop returns the sink, or one that drops events when it is nil.
func orDrop(s Sink) func(Event) {
	if s == nil {
		return func(Event) {}
	}
	return s
}

package queue

// InlineMax is inlineMax for the external tests.
const InlineMax = inlineMax

// SentInline tells whether c's message went to the writer in the
// request itself rather than through pipes.
func SentInline(c *Client) bool {
	return c.request != nil && c.request.sent && c.request.msg == nil
}

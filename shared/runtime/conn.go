package runtime

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// net/http answers a request it cannot parse itself, before any handler
// runs: a malformed request line or header (400), headers over
// MaxHeaderBytes (431), an unsupported transfer encoding (501) or protocol
// version (505). It writes that answer straight to the connection as
// text/plain, in one write of the form
//
//	HTTP/1.1 <status>[: <text>]\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n<body>
//
// problemListener recognises exactly that write (a response of our
// handlers always carries a Date header after Content-Type, so none
// matches) and sends the same status as problem+json with a field instead,
// so that every 4xx of a function has the contract's shape.
type problemListener struct{ net.Listener }

// ProblemListener wraps ln so that net/http's own answers to unparseable
// requests are problem+json (see problemListener).
func ProblemListener(ln net.Listener) net.Listener { return problemListener{ln} }

func (l problemListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return problemConn{c}, nil
}

type problemConn struct{ net.Conn }

// CloseWrite passes net/http's half-close on: after a 431 it closes the
// writing side and waits, so that the client reads the answer before the
// connection is reset (net/http looks for this method on the connection).
func (c problemConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// goErrorHeaders are the headers net/http writes with its own answers.
const goErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// ProblemMalformedRequest is the type of net/http's own 4xx/5xx answers,
// rewritten: the request could not be read as HTTP at all.
const ProblemMalformedRequest = "urn:qinqing:problem:malformed-request"

func (c problemConn) Write(p []byte) (int, error) {
	if !bytes.HasPrefix(p, []byte("HTTP/1.1 ")) {
		return c.Conn.Write(p)
	}
	line, rest, ok := bytes.Cut(p, []byte("\r\n"))
	if !ok || !bytes.HasPrefix(rest, []byte(goErrorHeaders[2:])) {
		return c.Conn.Write(p)
	}
	status, err := strconv.Atoi(string(line[len("HTTP/1.1 "):min(len(line), len("HTTP/1.1 ")+3)]))
	if err != nil || status < 400 {
		return c.Conn.Write(p)
	}
	text := string(rest[len(goErrorHeaders)-2:])
	if _, after, ok := strings.Cut(text, ": "); ok {
		text = after // "400 Bad Request: missing required Host header"
	} else {
		text = strings.TrimPrefix(text, strconv.Itoa(status)+" ")
	}
	body, _ := json.Marshal(Problem{Type: ProblemMalformedRequest, Title: http.StatusText(status), Status: status,
		Detail: "the request could not be read as HTTP: " + text, Field: malformedField(status, text),
		InvalidParams: []InvalidParam{{Name: malformedField(status, text), Reason: text}}})
	var out bytes.Buffer
	out.WriteString("HTTP/1.1 " + strconv.Itoa(status) + " " + http.StatusText(status) + "\r\n")
	out.WriteString("Content-Type: application/problem+json\r\nConnection: close\r\n")
	out.WriteString("Content-Length: " + strconv.Itoa(len(body)+1) + "\r\n\r\n")
	out.Write(body)
	out.WriteByte('\n')
	if _, err := c.Conn.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// malformedField names the part of the request net/http refused.
func malformedField(status int, text string) string {
	t := strings.ToLower(text)
	switch {
	case status == http.StatusRequestHeaderFieldsTooLarge:
		return "headers"
	case strings.Contains(t, "host"):
		return "Host"
	case strings.Contains(t, "transfer encoding") || strings.Contains(t, "transfer-encoding"):
		return "Transfer-Encoding"
	case strings.Contains(t, "content-length"):
		return "Content-Length"
	case status == http.StatusHTTPVersionNotSupported || strings.Contains(t, "protocol version"):
		return "protocol"
	}
	return "request"
}

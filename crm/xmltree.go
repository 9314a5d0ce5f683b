package crm

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// elem is a minimal XML element tree: enough to read and edit a CIB without
// knowing its whole schema (encoding/xml's structs would drop what they do
// not name). Text content is kept only as whitespace-trimmed CDATA; CIBs
// carry their data in attributes.
type elem struct {
	Name     string
	Attrs    []xml.Attr
	Children []*elem
	Text     string
}

func parseElem(b []byte) (*elem, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	var stack []*elem
	var root *elem
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parse XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			e := &elem{Name: t.Name.Local}
			for _, a := range t.Attr {
				e.Attrs = append(e.Attrs, xml.Attr{Name: xml.Name{Local: a.Name.Local}, Value: a.Value})
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, e)
			} else if root == nil {
				root = e
			}
			stack = append(stack, e)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				if s := strings.TrimSpace(string(t)); s != "" {
					stack[len(stack)-1].Text += s
				}
			}
		}
	}
	if root == nil {
		return nil, fmt.Errorf("parse XML: no element")
	}
	return root, nil
}

func newElem(name string, kv ...string) *elem {
	e := &elem{Name: name}
	for i := 0; i+1 < len(kv); i += 2 {
		e.set(kv[i], kv[i+1])
	}
	return e
}

func (e *elem) attr(k string) string {
	for _, a := range e.Attrs {
		if a.Name.Local == k {
			return a.Value
		}
	}
	return ""
}

func (e *elem) set(k, v string) {
	for i, a := range e.Attrs {
		if a.Name.Local == k {
			e.Attrs[i].Value = v
			return
		}
	}
	e.Attrs = append(e.Attrs, xml.Attr{Name: xml.Name{Local: k}, Value: v})
}

func (e *elem) add(c ...*elem) *elem {
	e.Children = append(e.Children, c...)
	return e
}

// child returns the first child called name, nil when none.
func (e *elem) child(name string) *elem {
	if e == nil {
		return nil
	}
	for _, c := range e.Children {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// path walks child names from e; nil when any step is missing.
func (e *elem) path(names ...string) *elem {
	for _, n := range names {
		e = e.child(n)
	}
	return e
}

// all returns every descendant called name, in document order.
func (e *elem) all(name string) []*elem {
	var out []*elem
	var walk func(*elem)
	walk = func(x *elem) {
		for _, c := range x.Children {
			if c.Name == name {
				out = append(out, c)
			}
			walk(c)
		}
	}
	if e != nil {
		walk(e)
	}
	return out
}

// children returns the direct children called name.
func (e *elem) children(name string) []*elem {
	var out []*elem
	if e == nil {
		return nil
	}
	for _, c := range e.Children {
		if c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

func (e *elem) clone() *elem {
	c := &elem{Name: e.Name, Text: e.Text, Attrs: append([]xml.Attr(nil), e.Attrs...)}
	for _, ch := range e.Children {
		c.Children = append(c.Children, ch.clone())
	}
	return c
}

// nvpairs returns name→value of the nvpairs directly under the first child
// set called set (e.g. meta_attributes) of e; rules on sets are ignored.
func (e *elem) nvpairs(set string) map[string]string {
	m := map[string]string{}
	for _, s := range e.children(set) {
		for _, nv := range s.children("nvpair") {
			m[nv.attr("name")] = nv.attr("value")
		}
	}
	return m
}

// write prints e; indent "" writes it on one line.
func (e *elem) write(w *bytes.Buffer, indent string, depth int) {
	pad := ""
	if indent != "" {
		pad = strings.Repeat(indent, depth)
	}
	w.WriteString(pad)
	w.WriteByte('<')
	w.WriteString(e.Name)
	for _, a := range e.Attrs {
		w.WriteByte(' ')
		w.WriteString(a.Name.Local)
		w.WriteString(`="`)
		xmlEscape(w, a.Value)
		w.WriteByte('"')
	}
	if len(e.Children) == 0 && e.Text == "" {
		w.WriteString("/>")
		if indent != "" {
			w.WriteByte('\n')
		}
		return
	}
	w.WriteByte('>')
	if e.Text != "" {
		xmlEscape(w, e.Text)
	}
	if len(e.Children) > 0 && indent != "" {
		w.WriteByte('\n')
	}
	for _, c := range e.Children {
		c.write(w, indent, depth+1)
	}
	if len(e.Children) > 0 {
		w.WriteString(pad)
	}
	w.WriteString("</")
	w.WriteString(e.Name)
	w.WriteByte('>')
	if indent != "" {
		w.WriteByte('\n')
	}
}

func (e *elem) bytes(indent string) []byte {
	var b bytes.Buffer
	e.write(&b, indent, 0)
	return b.Bytes()
}

func xmlEscape(w *bytes.Buffer, s string) {
	_ = xml.EscapeText(w, []byte(s))
}

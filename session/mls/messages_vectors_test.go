package mls

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"testing"

	"github.com/current-vpn/current/session/mls/wire"
)

func init() { registerVectorChecker("messages", checkMessagesVectors) }

// wsValue is a struct with both halves of the codec.
type wsValue interface {
	wire.Marshaler
	wire.Unmarshaler
}

// messagesField says how to decode one field of a messages.json case, and
// what else to check on the decoded value.
type messagesField struct {
	decode func() wsValue
	check  func(v wsValue) error
}

// mlsMessageField expects an MLSMessage of wire format wf; for public
// messages ct is the content type the field name promises (0: any).
func mlsMessageField(wf WireFormat, ct ContentType) messagesField {
	return messagesField{
		decode: func() wsValue { return new(MLSMessage) },
		check: func(v wsValue) error {
			m := v.(*MLSMessage)
			if m.WireFormat != wf {
				return fmt.Errorf("wire_format %d, want %d", m.WireFormat, wf)
			}
			if ct != 0 && m.PublicMessage.Content.ContentType != ct {
				return fmt.Errorf("content_type %d, want %d", m.PublicMessage.Content.ContentType, ct)
			}
			return nil
		},
	}
}

func messagesPlainField(decode func() wsValue) messagesField { return messagesField{decode: decode} }

// messagesFields lists every field test-vectors.md defines for messages.json.
var messagesFields = map[string]messagesField{
	"mls_welcome":     mlsMessageField(WireFormatWelcome, 0),
	"mls_group_info":  mlsMessageField(WireFormatGroupInfo, 0),
	"mls_key_package": mlsMessageField(WireFormatKeyPackage, 0),

	"ratchet_tree":  messagesPlainField(func() wsValue { return new(RatchetTree) }),
	"group_secrets": messagesPlainField(func() wsValue { return new(GroupSecrets) }),

	"add_proposal":                      messagesPlainField(func() wsValue { return new(Add) }),
	"update_proposal":                   messagesPlainField(func() wsValue { return new(Update) }),
	"remove_proposal":                   messagesPlainField(func() wsValue { return new(Remove) }),
	"pre_shared_key_proposal":           messagesPlainField(func() wsValue { return new(PreSharedKey) }),
	"re_init_proposal":                  messagesPlainField(func() wsValue { return new(ReInit) }),
	"external_init_proposal":            messagesPlainField(func() wsValue { return new(ExternalInit) }),
	"group_context_extensions_proposal": messagesPlainField(func() wsValue { return new(GroupContextExtensions) }),

	"commit": messagesPlainField(func() wsValue { return new(Commit) }),

	"public_message_application": mlsMessageField(WireFormatPublicMessage, ContentTypeApplication),
	"public_message_proposal":    mlsMessageField(WireFormatPublicMessage, ContentTypeProposal),
	"public_message_commit":      mlsMessageField(WireFormatPublicMessage, ContentTypeCommit),
	"private_message":            mlsMessageField(WireFormatPrivateMessage, 0),
}

// checkMessagesVectors decodes every field of every case with its structure,
// requiring the whole input to be consumed, and re-encodes it byte for byte.
// A field missing from a case, or a field this checker does not know, fails.
func checkMessagesVectors(t *testing.T, data []byte) {
	cases := decodeVectors[map[string]json.RawMessage](t, data)
	names := make([]string, 0, len(messagesFields))
	for name := range messagesFields {
		names = append(names, name)
	}
	sort.Strings(names)

	checked := 0
	for i, tc := range cases {
		for name := range tc {
			if _, ok := messagesFields[name]; !ok {
				t.Errorf("case %d: unknown field %q", i, name)
			}
		}
		for _, name := range names {
			raw, ok := tc[name]
			if !ok {
				t.Errorf("case %d: field %s missing", i, name)
				continue
			}
			var enc hexBytes
			if err := json.Unmarshal(raw, &enc); err != nil || enc == nil {
				t.Errorf("case %d: field %s: not a hex string (%v)", i, name, err)
				continue
			}
			if err := messagesRoundTrip(messagesFields[name], enc); err != nil {
				t.Errorf("case %d: %s: %v", i, name, err)
				continue
			}
			checked++
		}
	}
	if want := len(cases) * len(names); checked != want {
		t.Errorf("checked %d fields, want %d", checked, want)
	}
	t.Logf("%d cases, %d fields decoded and re-encoded", len(cases), checked)
}

func messagesRoundTrip(f messagesField, enc []byte) error {
	v := f.decode()
	if err := wire.Unmarshal(enc, v); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if f.check != nil {
		if err := f.check(v); err != nil {
			return err
		}
	}
	got, err := wire.Marshal(v)
	if err != nil {
		return fmt.Errorf("re-encode: %w", err)
	}
	if !bytes.Equal(got, enc) {
		return fmt.Errorf("re-encoding differs\n got  %x\n want %x", got, enc)
	}
	return nil
}

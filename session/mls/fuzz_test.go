package mls

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/current-vpn/current/session/mls/wire"
)

// The fuzz targets check two properties of every top-level decoder: hostile
// bytes never make it panic, and whatever it accepts re-encodes to exactly
// the input, because each value has a single encoding. The seeds are real
// encodings from messages.json, the hand-built samples of structs_test.go and
// a few hostile inputs.

// fuzzVectorDir mirrors vectorDir for any testing.TB, fuzz targets included.
func fuzzVectorDir(tb testing.TB) string {
	tb.Helper()
	if dir := os.Getenv("MLS_VECTORS"); dir != "" {
		return dir
	}
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "mls-vectors")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("cannot find the repository root (go.mod) to locate ../shared/mls-vectors; set MLS_VECTORS")
		}
		dir = parent
	}
}

// messagesVectorCases caches messages.json, which every seed set reads.
var messagesVectorCases []map[string]hexBytes

// readMessagesVectorCase returns the fields of case i of messages.json.
func readMessagesVectorCase(tb testing.TB, i int) map[string][]byte {
	tb.Helper()
	if messagesVectorCases == nil {
		data, err := os.ReadFile(filepath.Join(fuzzVectorDir(tb), "messages.json"))
		if err != nil {
			tb.Fatalf("reading messages.json: %v", err)
		}
		if err := json.Unmarshal(data, &messagesVectorCases); err != nil {
			tb.Fatalf("decoding messages.json: %v", err)
		}
	}
	if i >= len(messagesVectorCases) {
		tb.Fatalf("messages.json has %d cases, want case %d", len(messagesVectorCases), i)
	}
	out := make(map[string][]byte, len(messagesVectorCases[i]))
	for k, v := range messagesVectorCases[i] {
		out[k] = v
	}
	return out
}

// messagesSeeds returns field of cases 0, 100 and 200 (one per cipher suite).
func messagesSeeds(tb testing.TB, field string) [][]byte {
	var seeds [][]byte
	for _, i := range []int{0, 100, 200} {
		b, ok := readMessagesVectorCase(tb, i)[field]
		if !ok {
			tb.Fatalf("messages.json case %d has no %s", i, field)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// mlsMessageBodies strips the version and wire format from MLSMessage seeds.
func mlsMessageBodies(tb testing.TB, field string) [][]byte {
	var out [][]byte
	for _, b := range messagesSeeds(tb, field) {
		out = append(out, b[4:])
	}
	return out
}

// wsHostileSeeds are inputs aimed at the decoders' length and tag handling.
var wsHostileSeeds = [][]byte{
	nil,
	{0},
	{0xff},
	{0x00, 0x01, 0x00, 0x03, 0xbf, 0xff, 0xff, 0xff},       // huge vector
	{0x00, 0x01, 0x00, 0x03, 0x00, 0x01, 0x40, 0x01},       // non-minimal varint
	{0x00, 0x01, 0x00, 0x03, 0x00, 0x01, 0xc0, 0, 0, 0, 0}, // reserved varint prefix
	{0x00, 0x01, 0x00, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0, 0, 0x03, 0, 0x02},
	{0x00, 0x02, 0x00, 0x01},
	{0x01, 0x02, 0x02},
	bytes.Repeat([]byte{0x01}, 64),
}

func wsAddSeeds(f *testing.F, seedSets ...[][]byte) {
	for _, set := range seedSets {
		for _, s := range set {
			f.Add(s)
		}
	}
	for _, s := range wsHostileSeeds {
		f.Add(s)
	}
}

func wsSampleEncodings(f *testing.F, match func(wsValue) bool) [][]byte {
	var out [][]byte
	for _, s := range wsSamples() {
		if match(s.v) {
			out = append(out, wsMarshal(f, s.v))
		}
	}
	return out
}

func wsIs[T any](v wsValue) bool { _, ok := v.(T); return ok }

// fuzzRoundTrip decodes data into v and, if that succeeds, requires the
// re-encoding to equal data.
func fuzzRoundTrip(t *testing.T, data []byte, v wsValue) {
	if err := wire.Unmarshal(data, v); err != nil {
		return
	}
	enc, err := wire.Marshal(v)
	if err != nil {
		t.Fatalf("decoded %x, but re-encoding fails: %v", data, err)
	}
	if !bytes.Equal(enc, data) {
		t.Fatalf("re-encoding differs\n got  %x\n want %x", enc, data)
	}
}

func FuzzDecodeMLSMessage(f *testing.F) {
	var seeds [][]byte
	for _, field := range []string{"mls_welcome", "mls_group_info", "mls_key_package", "public_message_application", "public_message_proposal", "public_message_commit", "private_message"} {
		seeds = append(seeds, messagesSeeds(f, field)...)
	}
	wsAddSeeds(f, seeds, wsSampleEncodings(f, wsIs[*MLSMessage]))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip(t, data, new(MLSMessage)) })
}

func FuzzDecodeKeyPackage(f *testing.F) {
	wsAddSeeds(f, mlsMessageBodies(f, "mls_key_package"), wsSampleEncodings(f, wsIs[*KeyPackage]))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip(t, data, new(KeyPackage)) })
}

func FuzzDecodeWelcome(f *testing.F) {
	wsAddSeeds(f, mlsMessageBodies(f, "mls_welcome"), wsSampleEncodings(f, wsIs[*Welcome]))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip(t, data, new(Welcome)) })
}

func FuzzDecodeGroupInfo(f *testing.F) {
	wsAddSeeds(f, mlsMessageBodies(f, "mls_group_info"), wsSampleEncodings(f, wsIs[*GroupInfo]))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip(t, data, new(GroupInfo)) })
}

func FuzzDecodeRatchetTree(f *testing.F) {
	wsAddSeeds(f, messagesSeeds(f, "ratchet_tree"), wsSampleEncodings(f, wsIs[*RatchetTree]))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip(t, data, new(RatchetTree)) })
}

func FuzzDecodeGroupSecrets(f *testing.F) {
	wsAddSeeds(f, messagesSeeds(f, "group_secrets"), wsSampleEncodings(f, wsIs[*GroupSecrets]))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip(t, data, new(GroupSecrets)) })
}

func FuzzDecodeProposal(f *testing.F) {
	// The vectors hold bare proposal bodies; prefixing the type makes them
	// Proposals.
	var seeds [][]byte
	for pt, field := range map[ProposalType]string{
		ProposalAdd:                    "add_proposal",
		ProposalUpdate:                 "update_proposal",
		ProposalRemove:                 "remove_proposal",
		ProposalPSK:                    "pre_shared_key_proposal",
		ProposalReInit:                 "re_init_proposal",
		ProposalExternalInit:           "external_init_proposal",
		ProposalGroupContextExtensions: "group_context_extensions_proposal",
	} {
		for _, body := range messagesSeeds(f, field) {
			seeds = append(seeds, append([]byte{byte(pt >> 8), byte(pt)}, body...))
		}
	}
	wsAddSeeds(f, seeds, wsSampleEncodings(f, wsIs[*Proposal]))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip(t, data, new(Proposal)) })
}

func FuzzDecodeCommit(f *testing.F) {
	wsAddSeeds(f, messagesSeeds(f, "commit"), wsSampleEncodings(f, wsIs[*Commit]))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip(t, data, new(Commit)) })
}

func FuzzDecodePrivateMessageContent(f *testing.F) {
	// Real contents, rebuilt from the public messages of the vectors, plus the
	// samples, with and without padding.
	for _, field := range []string{"public_message_application", "public_message_proposal", "public_message_commit"} {
		for _, enc := range messagesSeeds(f, field) {
			var m MLSMessage
			if err := wire.Unmarshal(enc, &m); err != nil {
				f.Fatalf("%s: %v", field, err)
			}
			c := m.PublicMessage.Content
			for _, pad := range []int{0, 7} {
				pmc := &PrivateMessageContent{ContentType: c.ContentType, ApplicationData: c.ApplicationData,
					Proposal: c.Proposal, Commit: c.Commit, Auth: m.PublicMessage.Auth, Padding: pad}
				f.Add(wsMarshal(f, pmc), uint8(c.ContentType))
			}
		}
	}
	for ct := ContentTypeApplication; ct <= ContentTypeCommit; ct++ {
		f.Add(wsMarshal(f, wsPrivateContent(ct, 3)), uint8(ct))
		f.Add([]byte{0, 0, 0, 0, 1}, uint8(ct))
	}
	for _, s := range wsHostileSeeds {
		f.Add(s, uint8(ContentTypeCommit))
	}
	f.Fuzz(func(t *testing.T, data []byte, ct uint8) {
		c, err := UnmarshalPrivateMessageContent(data, ContentType(ct))
		if err != nil {
			return
		}
		enc, err := wire.Marshal(c)
		if err != nil {
			t.Fatalf("decoded %x, but re-encoding fails: %v", data, err)
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("re-encoding differs\n got  %x\n want %x", enc, data)
		}
	})
}

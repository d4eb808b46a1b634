package session

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/current-vpn/current/session/mls"
)

// The published test transcripts (docs/transcripts, issue 15): the JSON
// form of one run of the protocol between two state machines with fixed
// keys and fixed randomness. docs/transcripts/README.md describes every
// field for an outside implementer; this file is the Go side of the same
// format.

// transcriptDir is where the published transcripts live, relative to the
// package directory (where go test runs).
const transcriptDir = "../docs/transcripts"

// hexBytes is a byte string written as lower-case hex in the JSON.
type hexBytes []byte

func (b hexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(b)), nil }

func (b *hexBytes) UnmarshalText(t []byte) error {
	d, err := hex.DecodeString(string(t))
	if err != nil {
		return err
	}
	*b = d
	return nil
}

// transcript is one file: one suite in one transport mode.
type transcript struct {
	Description string `json:"description"`
	Protocol    string `json:"protocol"`
	// WireVersion is ProtocolVersion, the version field of every
	// control envelope.
	WireVersion uint16 `json:"wire_version"`
	Suite       string `json:"suite"`
	SuiteName   string `json:"suite_name"`
	Mode        string `json:"mode"`
	// GoVersion produced the file; it is not compared on regeneration
	// (another toolchain may draw randomness differently, which the
	// comparison of the messages then reports).
	GoVersion  string `json:"go_version"`
	Seed       uint64 `json:"seed"`
	Randomness string `json:"randomness"`

	Config transcriptConfig `json:"config"`
	Keys   transcriptKeys   `json:"test_keys"`
	// Epochs lists the record keys of every epoch the two sides reach.
	Epochs   []epochKeys         `json:"epochs"`
	Messages []transcriptMessage `json:"messages"`
	Steps    []transcriptStep    `json:"steps"`
}

// transcriptConfig is the part of each side's session.Config that is not
// a default.
type transcriptConfig struct {
	StartTime         string `json:"start_time"`
	StepInterval      string `json:"step_interval"`
	InitiatorIndex    uint32 `json:"initiator_index,omitempty"`
	ResponderIndex    uint32 `json:"responder_index,omitempty"`
	RestartedIndex    uint32 `json:"restarted_initiator_index,omitempty"`
	MaxDatagramSize   int    `json:"max_datagram_size,omitempty"`
	HelloKeyNotBefore string `json:"hello_key_not_before"`
	HelloKeyNotAfter  string `json:"hello_key_not_after"`
	UpdatePolicy      string `json:"update_policy"`
}

// transcriptKeys are the long-term test keys of both sides.
type transcriptKeys struct {
	Warning                   string   `json:"warning"`
	InitiatorSignaturePrivate hexBytes `json:"initiator_signature_private"`
	InitiatorSignaturePublic  hexBytes `json:"initiator_signature_public"`
	ResponderSignaturePrivate hexBytes `json:"responder_signature_private"`
	ResponderSignaturePublic  hexBytes `json:"responder_signature_public"`
	// ResponderHelloKeyPair is HelloKeyPair.MarshalBinary (it holds the
	// KEM private key); ResponderHelloKey is the signed public HelloKey
	// that a HelloKeyAnswer carries.
	ResponderHelloKeyPair hexBytes `json:"responder_hello_key_pair"`
	ResponderHelloKey     hexBytes `json:"responder_hello_key"`
}

// epochKeys are the record keys of one epoch: the draft-kohbrok-mls-tls
// traffic secrets exported from the MLS epoch and the TLS 1.3 write key
// and IV expanded from each.
type epochKeys struct {
	Epoch uint64 `json:"epoch"`
	// The MLS epoch's exporter secret (RFC 9420 section 8.5), whence the
	// traffic secrets, and its epoch authenticator (section 8.7).
	ExporterSecret      hexBytes `json:"exporter_secret"`
	EpochAuthenticator  hexBytes `json:"epoch_authenticator"`
	ClientTrafficSecret hexBytes `json:"initiator_traffic_secret"`
	ClientKey           hexBytes `json:"initiator_write_key"`
	ClientIV            hexBytes `json:"initiator_write_iv"`
	ServerTrafficSecret hexBytes `json:"responder_traffic_secret"`
	ServerKey           hexBytes `json:"responder_write_key"`
	ServerIV            hexBytes `json:"responder_write_iv"`
}

// transcriptMessage is one unit on the wire: one element of Outgoing, so
// one datagram in datagram mode and one write in stream mode.
type transcriptMessage struct {
	Index int `json:"index"`
	// Step emitted it; ReceivedIn is the step in which the other side
	// received it, whose fields say what it derived.
	Step       int      `json:"step"`
	ReceivedIn int      `json:"received_in_step"`
	From       string   `json:"from"`
	Label      string   `json:"label"`
	Bytes      hexBytes `json:"bytes"`
}

// transcriptStep is one call into one side's state machine.
type transcriptStep struct {
	Index int    `json:"index"`
	Side  string `json:"side"`
	// Action is start, receive, send_packet, update or restart.
	Action string `json:"action"`
	Time   string `json:"time"`
	Seed   uint64 `json:"seed"`
	// Input is the index of the received message (receive).
	Input *int `json:"input,omitempty"`
	// Plaintext is the IP packet sealed (send_packet).
	Plaintext hexBytes `json:"plaintext,omitempty"`
	// Output are the messages the call emitted, in order.
	Output []int `json:"output,omitempty"`
	// What the side derived: its events, the packets it opened, its
	// MLS epoch afterwards (whose record keys Epochs lists).
	Events  []string   `json:"events,omitempty"`
	Packets []hexBytes `json:"packets,omitempty"`
	Epoch   uint64     `json:"epoch"`
	// Ephemeral secrets of the initiator, for an outside implementation
	// of the receiving side: the KeyPackage's private keys (the Welcome
	// is encrypted to them) and, for a sealed hello, the sealed inner
	// envelope and the answer key the SealedAnswer is encrypted under.
	KeyPackage *keyPackageSecrets `json:"key_package_secrets,omitempty"`
	Sealed     *sealedSecrets     `json:"sealed_hello,omitempty"`
}

type keyPackageSecrets struct {
	InitPrivate       hexBytes `json:"init_private"`
	EncryptionPrivate hexBytes `json:"encryption_private"`
}

type sealedSecrets struct {
	Timestamp string   `json:"timestamp"`
	Inner     hexBytes `json:"inner_envelope"`
	AnswerKey hexBytes `json:"answer_key"`
}

// transcriptCase is one published file.
type transcriptCase struct {
	suite mls.CipherSuiteID
	mode  Transport
	seed  uint64
}

var transcriptCases = []transcriptCase{
	{mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519, Stream, 0x0001_0001},
	{mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519, Datagram, 0x0001_0002},
	{mls.MLS128MLKEM768X25519AES128GCMSHA256Ed25519, Stream, 0xF001_0001},
	{mls.MLS128MLKEM768X25519AES128GCMSHA256Ed25519, Datagram, 0xF001_0002},
}

func (c transcriptCase) name() string {
	return fmt.Sprintf("%#04x-%s", uint16(c.suite), modeName(c.mode))
}

func (c transcriptCase) path() string {
	return filepath.Join(transcriptDir, "current-1.1-"+c.name()+".json")
}

func encodeTranscript(tr *transcript) ([]byte, error) {
	b, err := json.MarshalIndent(tr, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func readTranscript(path string) (*transcript, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var tr transcript
	if err := json.Unmarshal(b, &tr); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return &tr, nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }

package mls

import (
	"errors"
	"fmt"
	"slices"
)

// CheckedKeyPackage is a KeyPackage that passed ValidateWith, kept as a
// private copy so that it cannot change after the check. RFC 9420 has a
// KeyPackage checked where it is received (section 10.1) and again when
// the commit that adds it is made (section 12.2); of those checks, the
// KeyPackage's and its leaf's signatures and the encodings of their keys
// depend on nothing but the KeyPackage's bytes and the suite, so
// AddCheckedMemberWithoutPath takes them as done. The checks that depend
// on the group (its required capabilities and extensions, its members'
// credential types, its time and lifetime bound, its credential
// validator) still run there. The signature cache would answer the second
// verifications too, but only after encoding and hashing both signed
// contents again.
type CheckedKeyPackage struct {
	kp    KeyPackage
	suite CipherSuiteID
}

// Check is ValidateWith that, on success, returns the checked copy.
func (k *KeyPackage) Check(c *LeafNodeCheck) (*CheckedKeyPackage, error) {
	if c == nil {
		return nil, errors.New("mls: KeyPackage validation needs a cipher suite")
	}
	once := *c
	once.once = true
	if err := k.ValidateWith(&once); err != nil {
		return nil, err
	}
	return &CheckedKeyPackage{kp: k.clone(), suite: c.Suite.ID}, nil
}

// KeyPackage returns a copy of the checked KeyPackage.
func (c *CheckedKeyPackage) KeyPackage() *KeyPackage {
	kp := c.kp.clone()
	return &kp
}

// clone is a deep copy of k.
func (k *KeyPackage) clone() KeyPackage {
	c := *k
	c.InitKey = slices.Clone(k.InitKey)
	c.LeafNode = *k.LeafNode.clone()
	c.Extensions = k.Extensions.clone()
	c.Signature = slices.Clone(k.Signature)
	return c
}

// AddCheckedMemberWithoutPath is AddMemberWithoutPath for a KeyPackage
// checked by KeyPackage.Check in this group's suite: its signatures and
// key encodings are not checked again, everything the group adds to the
// check is.
func (g *Group) AddCheckedMemberWithoutPath(c *CheckedKeyPackage) (*CommitResult, error) {
	return g.addChecked(c, commitOptions{checked: true})
}

// AddOnlyMemberWelcome is AddCheckedMemberWithoutPath for a group of one,
// as its creator makes it for the member it was created for: after the
// commit the group's only other member is the one it adds, who learns the
// new epoch from the Welcome (RFC 9420 section 12.4.3), so the commit goes
// to nobody. It is signed (its signature is part of the confirmed
// transcript) but not framed, which spares the membership tag or the
// PrivateMessage encryption of a message that would be thrown away. It
// returns the Welcome; the commit is pending as after any commit.
func (g *Group) AddOnlyMemberWelcome(c *CheckedKeyPackage) (*MLSMessage, error) {
	if err := g.checkUsable(); err != nil {
		return nil, err
	}
	if n := len(g.Members()); n != 1 {
		return nil, fmt.Errorf("mls: AddOnlyMemberWelcome in a group of %d members", n)
	}
	res, err := g.addChecked(c, commitOptions{checked: true, welcomeOnly: true})
	if err != nil {
		return nil, err
	}
	return res.Welcome, nil
}

func (g *Group) addChecked(c *CheckedKeyPackage, o commitOptions) (*CommitResult, error) {
	if c == nil {
		return nil, errors.New("mls: missing checked KeyPackage")
	}
	if c.suite != g.suite.ID {
		return nil, fmt.Errorf("mls: KeyPackage checked for suite %#04x, the group's is %s", uint16(c.suite), g.suite.Name)
	}
	// The proposal shares c's bytes: the engine never writes into a
	// KeyPackage it adds (the tree and the commit only read them), so c
	// stays as it was checked.
	add := &Add{KeyPackage: c.kp}
	return g.commitProposals([]Proposal{{ProposalType: ProposalAdd, Add: add}}, o)
}

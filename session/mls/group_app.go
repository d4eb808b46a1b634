package mls

// SealApplication encrypts data as a PrivateMessage from this member, with
// authenticatedData bound to it in the clear. MLS forbids application data in
// PublicMessages.
func (g *Group) SealApplication(data, authenticatedData []byte) (*MLSMessage, error) {
	if err := g.checkUsable(); err != nil {
		return nil, err
	}
	content := &FramedContent{
		GroupID:           g.state.ctx.GroupID,
		Epoch:             g.state.ctx.Epoch,
		Sender:            Sender{SenderType: SenderTypeMember, LeafIndex: g.state.priv.Leaf},
		AuthenticatedData: authenticatedData,
		ContentType:       ContentTypeApplication,
		ApplicationData:   data,
	}
	signer, err := g.signingKey()
	if err != nil {
		return nil, err
	}
	defer g.releaseSigningKey()
	ac, err := signer.signContent(WireFormatPrivateMessage, content, &g.state.ctx)
	if err != nil {
		return nil, err
	}
	pm, err := g.state.keys.ProtectPrivate(ac, g.padding(ac))
	if err != nil {
		return nil, err
	}
	return &MLSMessage{Version: ProtocolMLS10, WireFormat: WireFormatPrivateMessage, PrivateMessage: pm}, nil
}
